"""The sidecar's own scrape writer against prometheus_client's, and the shared render.

Expected bodies come from prometheus_client's ``generate_latest`` (text 0.0.4 and OpenMetrics
1.0) over the same families, never from the writer under test.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from exporter.bodies import Bodies
from exporter.clock import ManualClock
from exporter.collector import ModelCollector
from exporter.exposition import number
from exporter.server import ReloadCounts
from exporter.state import State
from tests.harness import WAIT, promtool
from tests.state_data import T0, build, encode, health, make_records

ODD_NAMES = ("fraud", 'quo"te', "back\\slash", "new\nline", "ünïcødé ✓", "")


def ingested(models: tuple[str, ...] = ODD_NAMES) -> tuple[State, ManualClock, Any]:
    _, decoder, state = build()
    clock = ManualClock(T0)
    records = make_records(np.random.default_rng(5), 3_000, T0, models)
    state.ingest(decoder.decode(encode(records, junk=4), T0), T0)
    return state, clock, decoder


def scrapes_of(state: State, clock: ManualClock) -> tuple[Bodies, ModelCollector]:
    collector = ModelCollector(lambda: state.snapshot(clock.now()), health)
    return Bodies(collector, lambda: state.version(clock.now())), collector


@pytest.mark.parametrize("openmetrics", [False, True])
def test_the_body_is_what_prometheus_client_writes(openmetrics: bool) -> None:
    state, clock, _ = ingested()
    scrapes, collector = scrapes_of(state, clock)
    expected = (generate_openmetrics if openmetrics else generate_latest)(collector.registry())
    assert scrapes.render(openmetrics) == expected
    assert scrapes.render(openmetrics) == expected  # the kept model part, the same bytes


@pytest.mark.parametrize("openmetrics", [False, True])
def test_the_body_served_in_pieces_and_gzipped_from_them_is_the_same_bytes(
    openmetrics: bool,
) -> None:
    state, clock, _ = ingested()
    scrapes, collector = scrapes_of(state, clock)
    expected = (generate_openmetrics if openmetrics else generate_latest)(collector.registry())
    pieces = scrapes.chunks(openmetrics)
    assert len(pieces) > 2  # the kept part inflated in pieces, then the tail: never one copy
    assert b"".join(pieces) == expected
    # What a gzip scrape is sent: the kept stream, the tail, one gzip member.
    gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert gunzip.decompress(scrapes.body(openmetrics).gzipped()) == expected
    assert gunzip.eof
    assert not gunzip.unused_data


def test_only_the_parts_of_the_current_version_are_kept() -> None:
    """Both formats share a version; once it moves on, rendering one format lets go of the
    other's stale part instead of keeping a body nobody will be served."""
    state, clock, decoder = ingested(("fraud",))
    scrapes, _ = scrapes_of(state, clock)
    scrapes.render(True)
    scrapes.render(False)
    assert scrapes.kept() == [False, True]
    records = make_records(np.random.default_rng(6), 10, T0, ("fraud",))
    state.ingest(decoder.decode(encode(records), T0), T0)
    scrapes.render(False)
    assert scrapes.kept() == [False]


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 1.0, 3, 0.1, 1e-300, 123456.0, 1234567.0, 1e22, -1e22, 2.5e-7, float("inf")],
)
def test_numbers_are_spelled_like_prometheus_client(value: float) -> None:
    from prometheus_client.utils import floatToGoString  # noqa: PLC0415

    assert number(value) == floatToGoString(value)
    assert number(float("nan")) == "NaN"


def test_the_text_body_passes_promtool_and_openmetrics_parses() -> None:
    state, clock, _ = ingested()
    scrapes, _ = scrapes_of(state, clock)
    text = scrapes.render(False).decode()
    result = promtool("check", "metrics", input=text)
    assert result.returncode == 0, result.stdout + result.stderr
    families = list(text_string_to_metric_families(scrapes.render(True).decode()))
    assert {f.name for f in families} >= {"model_predictions", "model_window_mean"}


def test_a_name_that_is_not_valid_unicode_never_breaks_a_scrape() -> None:
    """A JSON ``"\\ud800"`` decodes to a lone surrogate: the body is still valid UTF-8."""
    _, decoder, state = build()
    lines = [json.dumps({"ts": T0, "model": "\ud800", "version": "v1", "p": 0.5})]
    lines.append(f'{{"ts": {T0!r}, "model": "m\\udfff", "version": "\\ud83d", "cls": "\\ud800"}}')
    state.ingest(decoder.decode(("\n".join(lines) + "\n").encode()), T0)
    scrapes, _ = scrapes_of(state, ManualClock(T0))
    text = scrapes.render(False).decode("utf-8")  # strict: raises if not UTF-8
    assert "model_predictions_total" in text
    result = promtool("check", "metrics", input=text)
    assert result.returncode == 0, result.stdout + result.stderr
    scrapes.render(True)


def test_the_model_part_is_rendered_once_per_version() -> None:
    state, clock, decoder = ingested(("fraud",))
    scrapes, _ = scrapes_of(state, clock)
    first = scrapes.render(False)
    assert scrapes.render(False) == first
    assert scrapes.render(False) == first
    assert scrapes.renders == 1
    scrapes.render(True)  # the other format is its own render
    assert scrapes.renders == 2

    records = make_records(np.random.default_rng(6), 10, T0)
    state.ingest(decoder.decode(encode(records)), T0)  # a record arrived
    after_ingest = scrapes.render(False)
    assert scrapes.renders == 3
    assert after_ingest != first

    clock.advance(5.0)  # 1m windows of 12 buckets: a bucket turned over
    scrapes.render(False)
    assert scrapes.renders == 4
    clock.advance(0.5)  # same bucket, nothing new
    scrapes.render(False)
    assert scrapes.renders == 4


def test_concurrent_scrapes_share_one_render() -> None:
    state, clock, _ = ingested(("fraud",))
    scrapes, collector = scrapes_of(state, clock)
    bodies: list[bytes] = []
    start = threading.Barrier(4)

    def scrape() -> None:
        start.wait(timeout=WAIT)
        bodies.append(scrapes.render(False))

    threads = [threading.Thread(target=scrape) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT)
    assert scrapes.renders == 1
    expected = generate_latest(collector.registry())
    assert bodies == [expected] * 4


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("reloads", [None, ReloadCounts(), ReloadCounts(3, 1, False)])
def test_the_server_families_render_like_prometheus_client(
    openmetrics: bool, reloads: ReloadCounts | None
) -> None:
    """The server's own series, built as our families, are written as prometheus_client
    writes the same series built with its own metric families; the registry view (the
    server's fallback encoder) writes them the same too."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

    from exporter.exposition import Writer  # noqa: PLC0415
    from exporter.registry_view import FamiliesCollector  # noqa: PLC0415
    from exporter.server import ServerFamilies, _Stats  # noqa: PLC0415

    stats = _Stats()
    stats.count("/metrics", 200)
    stats.count("/healthz", 503)
    stats.count("/metrics", 200)

    class Oracle(Collector):
        def collect(self) -> Iterator[Metric]:
            requests = CounterMetricFamily(
                "model_exporter_http_requests",
                "HTTP requests answered, by handler (path) and status code.",
                labels=["handler", "code"],
            )
            requests.add_metric(["/healthz", "503"], 1)
            requests.add_metric(["/metrics", "200"], 2)
            yield requests
            if reloads is None:
                return
            outcomes = CounterMetricFamily(
                "model_exporter_config_reloads",
                "Config reloads (SIGHUP) by outcome; a refused config leaves the running one.",
                labels=["outcome"],
            )
            outcomes.add_metric(["ok"], reloads.ok)
            outcomes.add_metric(["error"], reloads.error)
            yield outcomes
            yield GaugeMetricFamily(
                "model_exporter_config_last_reload_successful",
                "1 unless the last config reload (SIGHUP) was refused.",
                value=1.0 if reloads.last_successful else 0.0,
            )

    encoder = generate_openmetrics if openmetrics else generate_latest
    oracle = CollectorRegistry(auto_describe=False)
    oracle.register(Oracle())
    expected = encoder(oracle)
    own = ServerFamilies(stats, None if reloads is None else lambda: reloads)
    text = Writer().render(own.families(), openmetrics)
    assert (text + ("# EOF\n" if openmetrics else "")).encode() == expected
    view = CollectorRegistry(auto_describe=False)
    view.register(FamiliesCollector(own.families))
    assert encoder(view) == expected


def test_kept_spellings_keep_every_value_as_prometheus_client_spells_it() -> None:
    """Spellings are kept by value between renders: 0.0 and -0.0 are one dict key and NaN is
    never equal to itself, so a warm writer must still spell each as it is."""
    from prometheus_client.utils import floatToGoString  # noqa: PLC0415

    from exporter.exposition import GAUGE, Family, Writer  # noqa: PLC0415

    values = [0.1, -0.0, 0.0, float("nan"), float("inf"), -float("inf"), 1234567.0, 1e22, 3]
    writer = Writer()
    for order in (values, values[::-1], [-0.0, 0.0, -0.0]):
        family = Family("model_x", GAUGE, "x", ("i",))
        for i, value in enumerate(order):
            family.add([str(i)], value)
        lines = writer.render([family], openmetrics=False).splitlines()[2:]
        assert [line.split(" ")[1] for line in lines] == [floatToGoString(v) for v in order]


def test_what_the_writer_keeps_follows_the_series_it_renders_now() -> None:
    """Label churn (new label values on every render, a burst of series that goes away) must
    not leave the writer holding every series it ever rendered: what it keeps stays within
    twice each family's current rows plus a floor, and the bodies stay exact."""
    from exporter.exposition import CACHE_FLOOR, COUNTER, GAUGE, Family, Writer  # noqa: PLC0415

    rows = 50

    def families(render: int, burst: int = 0) -> list[Family]:
        churn = Family("model_churn", GAUGE, "churning label values", ("model", "value"))
        for i in range(rows):  # half the series are new on every render, values too
            churn.add([f"m{i}", f"v{render if i % 2 else 0}"], render + i / 7)
        steady = Family("model_steady", COUNTER, "the same series", ("field",))
        for i in range(rows):
            steady.add([f"f{i}"], float(i))
        spike = Family("model_spike", GAUGE, "many series once, then none", ("k",))
        for i in range(burst):
            spike.add([str(i)], i / 3)
        return [churn, steady, spike]

    writer = Writer()
    writer.render(families(0, burst=5_000), openmetrics=False)
    # The burst's spellings (all but the zero's) are kept while it is shown (label text never
    # is: it is written afresh a column at a time) ...
    assert writer.spellings() >= 4_999
    most = 2 * (2 * rows) + 2 * CACHE_FLOOR  # two families with rows, each within its bound
    for render in range(1, 400):
        for openmetrics in (False, True):
            shown = families(render)
            text = writer.render(shown, openmetrics)
            assert text == Writer().render(shown, openmetrics)  # a cold writer writes the same
            assert writer.spellings() <= most, render  # ... and let go once it is not


def _client_text(families: list[Any], openmetrics: bool) -> bytes:
    """What prometheus_client writes for the same families (from their samples)."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415
    from prometheus_client.core import Metric  # noqa: PLC0415

    class Families:
        def collect(self) -> Any:
            for rendered in families:
                metric = Metric(rendered.name, rendered.help, rendered.type)
                for suffix, names, values, value in rendered.samples():
                    metric.add_sample(
                        rendered.name + suffix, dict(zip(names, values, strict=True)), value
                    )
                yield metric

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    return (generate_openmetrics if openmetrics else generate_latest)(registry)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_label_columns_write_what_prometheus_client_writes(openmetrics: bool) -> None:
    """Series added a column at a time (constant labels, columns, escaping in either, numbers
    of every kind, runs of rows between them) are written like prometheus_client's."""
    from exporter.exposition import COUNTER, GAUGE, HISTOGRAM, Family, Writer  # noqa: PLC0415

    odd = [-0.0, 0.0, 0, float("nan"), float("inf"), -float("inf"), 1234567.0, 1e22, 3, 0.1]
    names = ["plain", 'quo"te', "back\\slash", "new\nline", "ünï", "", "x", "y", "z", "w"]
    ratio = Family("model_ratio", GAUGE, "help with \\ and\nnewline", ("zeta", "model", "value"))
    ratio.add_many(("z1", "m", names), odd)
    ratio.add(("z2", 'm"', "single"), 0.5)
    ratio.add(("z3", "m", "another"), -0.0)
    ratio.add_many(('z"4', "n\n", names[:3]), [1.0, 2.0, 3.0])
    ratio.add_many((names[:2], "m", names[2:4]), [0.25, 0.75])
    counts = Family("model_count", COUNTER, "counts", ("field",))
    counts.add_many((names,), list(range(len(names))))
    bare = Family("model_bare", GAUGE, "no labels")
    bare.add((), 7.0)
    hist = Family("model_h", HISTOGRAM, "a histogram", ("model",))
    hist.add_histogram(("m",), ["0.1", "1", "+Inf"], [1.0, 3.0, 4.0], 2.5)
    hist.add_histogram(("n",), ["0.1", "1", "+Inf"], [0.0, 0.0, 2.0], 9.0)
    families = [ratio, counts, bare, hist]

    expected = _client_text(families, openmetrics)
    writer = Writer()
    for _ in range(2):  # cold, then with the kept spellings
        text = writer.render(families, openmetrics) + ("# EOF\n" if openmetrics else "")
        assert text.encode() == expected
        pieces = list(writer.chunks(families, openmetrics))
        assert b"".join(pieces) + (b"# EOF\n" if openmetrics else b"") == expected


def test_a_label_column_of_the_wrong_length_is_refused() -> None:
    from exporter.exposition import GAUGE, Family  # noqa: PLC0415

    family = Family("model_x", GAUGE, "x", ("a", "b"))
    with pytest.raises(ValueError, match="length"):
        family.add_many(("a", ["1", "2"]), [1.0])
    with pytest.raises(ValueError, match="label columns"):
        family.add_many((["1"],), [1.0])


def test_a_large_family_is_handed_over_in_pieces() -> None:
    """No piece much larger than ``PIECE_CHARS``: the page's text never exists whole."""
    from exporter.exposition import GAUGE, PIECE_CHARS, Family, Writer  # noqa: PLC0415

    family = Family("model_big", GAUGE, "big", ("model", "value"))
    for m in range(20):
        values = [f"v{i}" for i in range(1_000)]
        family.add_many((f"m{m}", values), [i / 3 for i in range(1_000)])
    pieces = list(Writer().chunks([family], openmetrics=False))
    assert len(pieces) > 5
    assert max(map(len, pieces)) < 2 * PIECE_CHARS
    assert b"".join(pieces) == _client_text([family], openmetrics=False)
