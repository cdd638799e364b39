"""Generated configs: either ``check-config`` says ok and ``run`` serves, or both refuse (exit 2).

Each example is the documented example config with a few keys replaced by hostile values (NaN,
infinities, huge, negative, wrong types, deep nesting, unknown keys, duplicate windows, other
profiles...) or by other valid ones, so both outcomes occur. Most examples run in-process: the
validation both commands share (``cli._load`` and the reference load inside ``sidecar.build``),
then the wired sidecar ingests a log and one scrape goes through the collector. A few run the
real CLI processes end to end. Never a traceback, a hang, a failed ingest or a broken scrape.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import math
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli import _load, main
from exporter.errors import ConfigError
from exporter.offline.simulate import Scenario, generate
from exporter.sidecar import Sidecar, build
from tests.configs import example_config
from tests.harness import WAIT, ManagedProcess, free_port, http_get, http_status, wait_until

LOG_LINES = b"".join(generate(40, 1_764_000_000.0, 100.0, Scenario(malformed_ratio=0.1)))

# Keys of the example config, and optional keys it leaves at their defaults.
EXTRA_KEYS: list[tuple[str | int, ...]] = [
    ("reference",),
    ("max_model_versions",),
    ("sketch_relative_accuracy",),
    ("histograms", "prediction"),
    ("histograms", "latency_seconds"),
    ("tail", "read_chunk_bytes"),
    ("tail", "positions_ttl"),
    ("tail", "watch"),
    ("drift", "alpha"),
    ("drift", "min_samples"),
    ("drift", "psi_floor"),
    ("drift", "outlier_z"),
    ("drift", "freeze_first"),
    ("ground_truth_join", "enabled"),
    ("ground_truth_join", "timeout"),
    ("ground_truth_join", "capacity"),
    ("windows", 0),
    ("quantiles", 1),
    ("fields", "features", 0, "max_categories"),
    ("fields", "features", 3, "max_categories"),
]


def _paths(data: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if prefix:
        yield prefix
    if isinstance(data, dict | list):
        for key, value in data.items() if isinstance(data, dict) else enumerate(data):
            yield from _paths(value, (*prefix, key))


PATHS = sorted(set(_paths(example_config("LOG", "POSITIONS"))) | set(EXTRA_KEYS), key=str)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = [math.nan, math.inf, -math.inf, 0, -1, -0.5, 10**12, 10**14, 10**100, 10**400]
HOSTILE += [True, None, "", "x" * 300, "a\x00b", "1ms", "3650d", "-5m", "1e14", [], {}, [math.nan]]
HOSTILE += [["1m", "60s"], ["1m", "1m"], [0.1, math.inf], _nested(20), _nested(60), {"a": 1}]
HOSTILE += ["REFERENCE:other", "REFERENCE:missing", "REFERENCE:directory", "SOURCE:directory"]
VALID = [1, 2, 5, 7, 12, 0.01, 0.05, 0.5, 0.9, False, "30s", "2m", "90s", "1h", "2d", 4096]
VALID += [["30s", "2h"], [0.25, 0.75], [0.5, 1.0, 2.0], "numeric", "categorical", "REFERENCE:good"]

values = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(VALID),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
replace = st.tuples(st.just("set"), st.sampled_from(PATHS), values)
unknown = st.tuples(st.just("unknown"), st.sampled_from(PATHS), st.text(min_size=1, max_size=8))
delete = st.tuples(st.just("delete"), st.sampled_from(PATHS), st.none())
mutations = st.lists(st.one_of(replace, replace, unknown, delete), max_size=3)


def _apply(data: dict[str, Any], mutation: tuple[str, tuple[str | int, ...], Any]) -> None:
    action, path, value = mutation
    target: Any = data
    for key in path[:-1]:
        if isinstance(target, dict) and isinstance(key, str):
            target = target.setdefault(key, {})
        elif isinstance(target, list) and isinstance(key, int) and key < len(target):
            target = target[key]
        else:
            return  # an earlier mutation replaced a parent: nothing to do
    last = path[-1]
    if isinstance(target, list) and isinstance(last, int) and last >= len(target):
        return
    if not isinstance(target, dict | list) or isinstance(target, dict) != isinstance(last, str):
        return
    if action == "set":
        target[last] = value  # type: ignore[index]
    elif action == "delete":
        if isinstance(target, dict):
            target.pop(last, None)  # type: ignore[call-overload]
        else:
            del target[last]  # type: ignore[arg-type]
    elif isinstance(target, dict) and isinstance(target.get(last), dict):
        target[last][value] = 1


def _resolve(value: Any, places: dict[str, str]) -> Any:
    """Placeholders for files only a running test has (profiles, directories)."""
    if isinstance(value, str) and value in places:
        return places[value]
    if isinstance(value, list):
        return [_resolve(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, places) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Reference profiles built by `baseline`: one for the example config, one for another
    model; plus a directory."""
    root = tmp_path_factory.mktemp("profiles")
    dev = root / "dev.jsonl"
    dev.write_bytes(b"".join(generate(300, 1_764_000_000.0, 100.0, Scenario())))
    example = root / "example.yaml"
    example.write_text(yaml.safe_dump(example_config(dev)))
    other = root / "other.yaml"
    fields = {"prediction": "prediction", "features": [{"name": "income", "path": "income"}]}
    other.write_text(yaml.safe_dump({"sources": [str(dev)], "fields": fields}))
    other_log = root / "other.jsonl"
    other_log.write_text(
        "".join(f'{{"prediction": 0.{i % 9}, "income": {i}}}\n' for i in range(99))
    )
    for name, config, log in (("good", example, dev), ("other", other, other_log)):
        argv = ["baseline", "--config", str(config), "--input", str(log), "--output"]
        assert main([*argv, str(root / f"{name}.json")]) == 0
    (root / "directory").mkdir()
    return {
        "REFERENCE:good": str(root / "good.json"),
        "REFERENCE:other": str(root / "other.json"),
        "REFERENCE:missing": str(root / "missing.json"),
        "REFERENCE:directory": str(root / "directory"),
        "SOURCE:directory": str(root / "directory"),
    }


# Each example writes files and builds a sidecar: no per-example deadline, and the tmp_path
# fixture is shared by the examples of one test (each works in its own subdirectory).
SLOW = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _write(directory: Path, changes: list[Any], places: dict[str, str]) -> Path:
    log = directory / "p.jsonl"
    log.write_bytes(LOG_LINES)
    data = example_config(log, directory / "state" / "positions.json")
    for mutation in changes:
        _apply(data, mutation)
    data = _resolve(copy.deepcopy(data), places)
    path = directory / "exporter.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _build(config: Any) -> Sidecar:
    """``sidecar.build`` on a free port; another process taking it meanwhile is retried."""
    for attempt in range(5):
        try:
            return build(config, f"127.0.0.1:{free_port()}")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == 4:
                raise
    raise AssertionError("unreachable")


def _scrape_is_sound(text: str, openmetrics: bool = False) -> None:
    """The exposition parses (prometheus_client's parser of its format) and no series appears
    twice."""
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    seen: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    families = set()
    for family in parse(text):
        families.add(family.name)
        for sample in family.samples:
            seen[(sample.name, tuple(sorted(sample.labels.items())))] += 1
    duplicates = [series for series, n in seen.items() if n > 1]
    assert not duplicates, duplicates[:5]
    # The family, not a sample: a source that is not there yet is a valid config with no records.
    assert "model_predictions" in families


@settings(SLOW, max_examples=150)
@given(changes=mutations)
@example(changes=[("set", ("sources", 0), "not-there-yet.jsonl")])  # valid, and no records
@example(changes=[("set", ("sources", 0), "x" * 300)])  # a name too long: refused
@example(changes=[("set", ("reference",), "x" * 300)])  # stat raised out of check_paths
def test_a_config_is_refused_with_problems_or_ingests_and_scrapes(
    tmp_path: Path, places: dict[str, str], changes: list[Any]
) -> None:
    path = _write(Path(tempfile.mkdtemp(dir=tmp_path)), changes, places)
    with contextlib.chdir(path.parent):  # relative paths in the config land in its directory
        _validate_build_ingest_scrape(path)


def _validate_build_ingest_scrape(path: Path) -> None:
    problems: list[str] = []
    try:
        config, _ = _load(str(path), prepare=True)
        sidecar = _build(config)
    except ConfigError as exc:
        problems = exc.problems
    if problems:
        assert all(": " in problem for problem in problems), problems
        event("refused")
        return
    event("served")
    try:
        sidecar.pipeline.stop()
        sidecar.pipeline.run()  # stopped before it started: drain the log once, then close
        assert not sidecar.pipeline.failed
        errors = sidecar.pipeline.health().parse_errors
        assert not [reason for (_, reason) in errors if reason == "unprocessable"], errors
        for openmetrics in (False, True):  # the bodies /metrics serves, in either format
            _scrape_is_sound(sidecar.bodies.render(openmetrics).decode(), openmetrics)
    finally:
        sidecar.server.stop()


@pytest.mark.e2e
@settings(SLOW, max_examples=10)
@given(changes=mutations)
def test_the_real_commands_agree_on_generated_configs(
    tmp_path: Path, places: dict[str, str], changes: list[Any]
) -> None:
    path = _write(Path(tempfile.mkdtemp(dir=tmp_path)), changes, places)
    url = f"http://127.0.0.1:{free_port()}"
    argv = ["run", "--config", str(path), "--web.listen-address", url.removeprefix("http://")]
    proc = ManagedProcess(
        "sidecar", [sys.executable, "-m", "exporter", *argv], path.parent, cwd=path.parent
    )
    try:
        checked = subprocess.run(  # while run starts: both commands side by side
            [sys.executable, "-m", "exporter", "check-config", str(path)],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert checked.returncode in (0, 2), checked.stderr
        assert "Traceback" not in checked.stderr
        event(f"check-config exit {checked.returncode}")
        if checked.returncode == 0:
            proc.wait_ready(lambda: http_status(f"{url}/healthz") == 200, WAIT, "/healthz")
            got = http_get(f"{url}/metrics")
            assert got is not None
            assert got[0] == 200
            _scrape_is_sound(got[1].decode())
        else:
            assert "invalid configuration" in checked.stderr
            wait_until(lambda: proc.returncode is not None, WAIT, message="run to refuse")
    finally:
        code = proc.stop()
    assert code == checked.returncode, proc.output()
    stderr = proc.stderr_path.read_text()
    assert "Traceback" not in stderr
    assert ("invalid configuration" in stderr) == (code == 2)
