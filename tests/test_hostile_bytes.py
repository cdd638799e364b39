"""Property: whatever bytes are appended to the log, the sidecar stays up, counts every line
exactly once, and every scrape passes the real ``promtool check metrics``.

Appended: random bytes, and JSON made to hurt — lone surrogate escapes, integers around and past
Python's 4,300-digit limit, 1e400 and NaN, nesting thousands deep, NUL runs, strings longer than
``max_line_bytes``, and odd types in every mapped field — in one to three appends, the last
line possibly unfinished. Most examples run in-process on the real tailer, decoder, state and
collector (wired by ``sidecar.build``); a few run against the real sidecar process.

"Exactly once", from the bytes alone: every complete line that is not too long is handed out
(``model_exporter_lines_total``); of those, every one that is not blank (blank lines are
skipped, docs/tailing.md) is a record or a parse error; a line longer than ``max_line_bytes``
(NUL bytes not counted) is counted in ``lines_too_long``.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.clock import ManualClock
from exporter.config import parse_config
from exporter.sidecar import build
from tests.configs import example_config, write_config
from tests.harness import WAIT, SidecarProcess, free_port, promtool, wait_until

MAX_LINE = 4096
BOM = b"\xef\xbb\xbf"
T0 = 1_717_000_000.0

# -- what gets appended ---------------------------------------------------------------------

_surrogates = st.sampled_from(["\\ud800", "\\udfff", "x\\udc80", "\\ud83d", "\\ud83d\\ude00"])
_text = st.one_of(
    st.text(max_size=12).map(json.dumps),
    _surrogates.map(lambda s: f'"{s}"'),
    st.sampled_from([10, 200, 5_000]).map(lambda n: json.dumps("é" * n)),  # some too long
    st.just('"nul\\u0000in\\u0000text"'),
)
_number = st.one_of(
    st.integers(-(10**9), 10**9).map(str),
    st.integers(4_290, 4_320).map(lambda n: "9" * n),  # Python's int limit is 4,300 digits
    st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1e-400", "-0", "0.5"]),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
)
_odd = st.one_of(
    st.sampled_from(["true", "false", "null", "[]", "{}", '{"a": [1, {"b": null}]}', '[1, "x"]']),
    st.integers(1, 3_000).map(lambda d: "[" * d + "]" * d),  # nesting deeper than any parser
)
_value = st.one_of(_text, _number, _odd)
_KEYS = ("ts", "model", "version", "prediction", "predicted_class", "confidence", "latency_ms")
_KEYS += ("ground_truth", "request_id")
_FEATURES = ("amount", "age", "merchant_risk", "country", "device")


@st.composite
def _record(draw: st.DrawFn) -> bytes:
    keys = draw(st.lists(st.sampled_from(_KEYS), max_size=len(_KEYS), unique=True))
    parts = [f'"{key}": {draw(_value)}' for key in keys]
    if draw(st.booleans()):
        features = draw(st.lists(st.sampled_from(_FEATURES), max_size=5, unique=True))
        inner = ", ".join(f'"{name}": {draw(_value)}' for name in features)
        parts.append(f'"features": {{{inner}}}')
    return ("{" + ", ".join(parts) + "}").encode()


_line = st.one_of(
    _record(),
    _record(),
    st.binary(max_size=40),
    st.sampled_from([b"", b" \t", b"\r", BOM, b"{", b"[1", b'"x"', b"\xff\xfe", b"\\ud800"]),
    st.tuples(st.integers(1, 300), _record()).map(lambda t: b"\0" * t[0] + t[1]),
)


@st.composite
def appends(draw: st.DrawFn) -> list[bytes]:
    """One to three appends of lines; the last one possibly without its newline."""
    lines = draw(st.lists(_line, min_size=1, max_size=25))
    ends = draw(
        st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines))
    )
    data = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    if draw(st.booleans()):
        data = draw(st.sampled_from([b"\0" * 4096, BOM])) + data  # a copytruncate hole, a BOM
    if draw(st.booleans()):
        data += draw(_line)  # unfinished
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=2)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@dataclass(frozen=True)
class Expected:
    lines: int  # complete lines handed out (not too long)
    counted: int  # of those, not blank: each a record or a parse error
    too_long: int
    nul_bytes: int


def expected(data: bytes, max_line: int = MAX_LINE) -> Expected:
    """The accounting computed from the bytes alone (a whole file read from offset 0)."""
    end = data.rfind(b"\n") + 1
    lines = too_long = counted = 0
    for i, raw in enumerate(data[:end].split(b"\n")[:-1]):
        line = raw.replace(b"\0", b"")
        if len(line) > max_line:
            too_long += 1
            continue
        if i == 0 and line.startswith(BOM):
            line = line[len(BOM) :]
        lines += 1
        counted += bool(line.strip())
    too_long += len(data[end:].replace(b"\0", b"")) > max_line
    return Expected(lines, counted, too_long, data.count(b"\0"))


# -- in-process: the real tailer, decoder, state and collector -------------------------------


def _config(log: Path, positions: Path) -> dict[str, Any]:
    return example_config(log, positions, tail={"max_line_bytes": MAX_LINE, "watch": False})


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # a failing example's bytes
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(appends())
def test_any_appended_bytes_are_counted_once_and_every_scrape_is_valid(pieces: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "predictions.jsonl"
        log.touch()
        config = parse_config(_config(log, Path(tmp) / "positions.json"))
        clock = ManualClock(T0)
        sidecar = build(config, listen_address=f"127.0.0.1:{free_port()}", clock=clock)
        engine = sidecar.engine
        try:
            for piece in pieces:
                with log.open("ab") as f:
                    f.write(piece)
                while sidecar.pipeline.step():
                    clock.advance(1.0)
                text = sidecar.bodies.render(False).decode()  # the body /metrics serves
                checked = promtool("check", "metrics", input=text)
                assert checked.returncode == 0, checked.stdout + checked.stderr
            ok, why = sidecar.pipeline.healthy()
            assert ok, why
            health = sidecar.pipeline.health()
            records = sum(g.totals.records for g in engine.state.snapshot(clock.now()).groups)
        finally:
            sidecar.pipeline.stop()
            sidecar.pipeline.run()  # stopped: drains nothing new, saves positions, closes files
            sidecar.server.stop()
    want = expected(b"".join(pieces))
    (source,) = health.sources.values()
    reasons = Counter({reason: n for (_, reason), n in health.parse_errors.items()})
    assert "unprocessable" not in reasons  # no line tripped an unexpected error
    assert source.lines == want.lines
    assert records + sum(reasons.values()) == want.counted
    assert source.lines_too_long == want.too_long
    assert source.nul_bytes_skipped == want.nul_bytes


def test_the_accounting_model_on_known_bytes() -> None:
    """The oracle itself, on bytes whose answer is known by hand."""
    data = BOM + b'{"a":1}\n\n \r\n' + b"\0" * 9 + b"x" * MAX_LINE + b"\nnot json\n" + b"y" * 5
    assert expected(data) == Expected(lines=5, counted=3, too_long=0, nul_bytes=9)
    assert expected(b"z" * (MAX_LINE + 1) + b"\nok\n" + b"w" * (MAX_LINE + 1)).too_long == 2


# -- the real sidecar process -----------------------------------------------------------------


def _sums(text: str) -> Counter[str]:
    sums: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] += sample.value
    return sums


@dataclass
class Live:
    log: Path
    sidecar: SidecarProcess
    written: bytes = field(default=b"", repr=False)


@pytest.fixture
def live(tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]) -> Live:
    """One real sidecar for every example of a test: each example appends to its log."""
    log = tmp_path / "predictions.jsonl"
    log.touch()
    config = write_config(tmp_path, _config(log, tmp_path / "positions.json"))
    return Live(log, start_sidecar(config))


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # a failing example's bytes
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pieces=appends())
def test_the_real_sidecar_counts_hostile_appends_once_and_serves_valid_scrapes(
    live: Live, pieces: list[bytes]
) -> None:
    """The totals must match everything written so far (the sidecar outlives the examples)."""
    data = b"".join(pieces)
    data = data[: data.rfind(b"\n") + 1]  # whole lines: the next example appends after them
    with live.log.open("ab") as f:
        f.write(data)
    live.written += data
    want = expected(live.written)

    def counted() -> tuple[int, int, int, int]:
        sums = _sums(live.sidecar.metrics_text())
        return (
            int(sums["model_exporter_lines_total"]),
            int(sums["model_predictions_total"] + sums["model_exporter_parse_errors_total"]),
            int(sums["model_exporter_lines_too_long_total"]),
            int(sums["model_exporter_nul_bytes_skipped_total"]),
        )

    # (lines, records + parse errors, too long, NUL bytes): each is read, then ingested, so the
    # wait is for all of them; a count that overshoots fails at once rather than time out.
    goal = (want.lines, want.counted, want.too_long, want.nul_bytes)

    def done() -> tuple[int, ...] | None:
        got = counted()
        assert all(g <= w for g, w in zip(got, goal, strict=True)), (got, goal)
        return got if got == goal else None

    wait_until(done, timeout=WAIT, message=f"the sidecar to count {goal}")
    checked = promtool("check", "metrics", input=live.sidecar.metrics_text())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    live.sidecar.assert_running()
