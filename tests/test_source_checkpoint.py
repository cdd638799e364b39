"""The tailer's periodic checkpoint: written when something moved, not on every flush."""

from __future__ import annotations

from pathlib import Path

import pytest
from tail_harness import Harness, records

from exporter.tail import positions as positions_mod


def test_an_idle_tailer_does_not_rewrite_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[bytes] = []
    real = positions_mod.write_atomic

    def counting(path: str, data: bytes) -> None:
        real(path, data)
        written.append(data)

    monkeypatch.setattr(positions_mod, "write_atomic", counting)
    h = Harness(tmp_path)
    h.write(records(0, 3))
    h.tick()
    h.tailer.save_positions()
    for _ in range(10):  # ten idle flush intervals
        h.advance(h.tail.positions_flush_interval)
        h.tick()
        h.tailer.save_positions()
    assert len(written) == 1
    h.write(records(3, 1))
    h.tick()
    h.tailer.save_positions()
    assert len(written) == 2
    h.advance(h.tail.positions_ttl)  # the entry's seen is refreshed on disk before it ages out
    h.tick()
    h.tailer.save_positions()
    assert len(written) == 3
    h.close()
