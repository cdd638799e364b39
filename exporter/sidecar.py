"""The composition root: wire source → engine → state → collector → HTTP, and run it.

The only place that builds the real clock, threads and sockets together; the CLI parses
arguments and calls this, tests call it with their own settings.

It also owns what a running sidecar is asked to do (``Control``): stop (SIGTERM, SIGINT, or the
ingest loop died) or reload (SIGHUP). A reload follows the Prometheus convention: read the
config file again; a config that fails validation is logged and counted, and the running one
stays; the drift thresholds (``RELOADABLE``) take effect at once, the reference profile is read
again, and any other changed key is named in a warning: it needs a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

from exporter.bodies import Bodies
from exporter.budget import exposition_budget
from exporter.clock import Clock, SystemClock
from exporter.collector import ModelCollector
from exporter.config_types import Config, DriftConfig
from exporter.engine import Engine
from exporter.errors import ConfigError
from exporter.pipeline import Pipeline
from exporter.reload import ReferenceFile
from exporter.server import MetricsServer, ReloadCounts
from exporter.status import Inputs, StatusEndpoint
from exporter.tail.tailer import Tailer
from exporter.tail.watch import Stopper, Waker, start_watch
from exporter.validate import parse_listen_address

if TYPE_CHECKING:
    from exporter.webfile import WebConfigFile

log = logging.getLogger(__name__)

# Config keys a reload applies to a running sidecar: every drift threshold. ``freeze_first`` is
# not one (the frozen reference is taken once), and the rest shape the state (fields, windows)
# or the I/O (sources, listen address) the sidecar was built with.
RELOADABLE = frozenset(f"drift.{f.name}" for f in fields(DriftConfig) if f.name != "freeze_first")
# Where a Config attribute's name differs from its key in the YAML file.
_YAML_KEYS = {
    "tail.positions_file": "positions_file",
    "label_join": "ground_truth_join.enabled",
    "label_join_timeout": "ground_truth_join.timeout",
    "label_join_capacity": "ground_truth_join.capacity",
}


def changed_keys(old: Config, new: Config) -> list[str]:
    """The config keys whose values differ, named as in the file (one level into ``tail`` and
    ``drift``; ``fields`` as a whole, which also covers ``category_cap``)."""
    names = []
    for f in fields(Config):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before == after:
            continue
        if f.name in ("tail", "drift"):
            names += [
                f"{f.name}.{g.name}"
                for g in fields(before)
                if getattr(before, g.name) != getattr(after, g.name)
            ]
        else:
            names.append(f.name)
    return [_YAML_KEYS.get(name, name) for name in names]


class Reloads:
    """Outcomes of config reloads, read by the HTTP server's collector at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = ReloadCounts()

    def counts(self) -> ReloadCounts:
        with self._lock:
            return self._counts

    def record(self, ok: bool) -> None:
        with self._lock:
            c = self._counts
            self._counts = (
                ReloadCounts(c.ok + 1, c.error, True)
                if ok
                else ReloadCounts(c.ok, c.error + 1, False)
            )


class Control:
    """What the process is asked to do next. ``stop`` and ``reload`` are called from signal
    handlers (so they only set flags) and from the ingest thread (``stop``, when it dies)."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = False
        self._reload = False
        self.reason = "asked to stop"  # why, for the log line the main thread writes

    def stop(self, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        self._stop = True
        self._wake.set()

    def reload(self) -> None:
        self._reload = True
        self._wake.set()

    def next(self) -> str:
        """Block until asked; ``"stop"`` wins over ``"reload"``."""
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return "stop"
            if self._reload:
                self._reload = False
                return "reload"


@dataclass
class Sidecar:
    config: Config
    pipeline: Pipeline
    server: MetricsServer
    engine: Engine
    watched: list[str]
    waker: Waker
    bodies: Bodies  # what /metrics serves, before the server's own few families
    listen_override: str | None = None
    reloads: Reloads = field(default_factory=Reloads)
    _stop_watch: Stopper | None = None

    def start(self) -> None:
        self.server.start()
        if self.config.tail.watch:
            self._stop_watch = start_watch(self.watched, self.waker)
        self.pipeline.start()
        log.info(
            "serving metrics on %s (port %d, %s); tailing %s",
            self.config.listen_address,
            self.server.port,
            "HTTPS" if self.server.tls else "HTTP",
            ", ".join(s.path for s in self.config.sources),
        )

    def stop(self, reason: str = "asked to stop") -> None:
        """Drain what was written, save positions, then close the port."""
        log.info("%s: draining what was written, then stopping", reason)
        self.server.draining()
        self.pipeline.stop()
        if self._stop_watch is not None:
            self._stop_watch()
        self.server.stop()
        log.info("stopped")

    def reload(self, load: Callable[[], Config]) -> bool:
        """Apply a new version of the config file (SIGHUP); False if it was refused."""
        try:
            new = load()
        except ConfigError as exc:
            log.error(
                "config reload refused, the running config stays: %s", "; ".join(exc.problems)
            )
            self.reloads.record(ok=False)
            return False
        if self.listen_override is not None:
            new = replace(new, listen_address=self.listen_override)
        changed = changed_keys(self.config, new)
        later = [key for key in changed if key not in RELOADABLE]
        if later:
            log.warning("config reload: %s changed; restart to apply", ", ".join(later))
        drift = replace(new.drift, freeze_first=self.config.drift.freeze_first)
        self.config = replace(self.config, drift=drift)
        self.pipeline.reload(drift)
        applied = [key for key in changed if key in RELOADABLE]
        log.info(
            "config reloaded: %s%s",
            f"applied {', '.join(applied)}" if applied else "no change that applies while running",
            "; reading the reference profile again" if self.config.reference else "",
        )
        self.reloads.record(ok=True)
        return True


def build(
    config: Config,
    listen_address: str | None = None,
    clock: Clock | None = None,
    on_failure: Callable[[], None] | None = None,
    web_config: WebConfigFile | None = None,
) -> Sidecar:
    """Everything wired and the port bound, nothing started: a bad address or a taken port
    fails here, before any thread runs."""
    if listen_address is not None:
        try:
            parse_listen_address(listen_address)
        except ValueError as exc:
            raise ConfigError([f"--web.listen-address: {exc}"]) from exc
        config = replace(config, listen_address=listen_address)
    clock = clock if clock is not None else SystemClock()
    reference_file = None
    reference = None
    if config.reference is not None:
        reference_file = ReferenceFile(
            config.reference, config.sketch_relative_accuracy, config.fields
        )
        reference = reference_file.load_now()
    engine = Engine(config, reference)
    tailer = Tailer(config.sources, config.tail, clock)
    waker = Waker()
    pipeline = Pipeline(tailer, engine, clock, config.tail, waker, reference_file, on_failure)
    state, assessor = engine.state, engine.assessor
    collector = ModelCollector(
        lambda: state.snapshot(clock.now()), pipeline.health, lambda: assessor.latest
    )
    budget = exposition_budget(config)
    log.info(
        "a scrape holds at most %d series and %.1f MiB, whatever the log holds (docs/metrics.md)",
        budget.series,
        budget.bytes / (1 << 20),
    )

    def version() -> tuple[object, ...]:
        latest = assessor.latest  # held in the key: its identity cannot be reused meanwhile
        return (state.version(clock.now()), id(latest), latest)

    bodies = Bodies(collector, version)
    host, port = parse_listen_address(config.listen_address)
    reloads = Reloads()
    server = MetricsServer(
        host,
        port,
        None,  # no prometheus_client registry: ``bodies`` writes every body
        pipeline.healthy,
        ready=pipeline.ready,
        web_config=web_config,
        reloads=reloads.counts,
        render=bodies.body,
        status=lambda query, gzipped: status.get(query, gzipped),  # noqa: PLW0108 (built below)
    )
    inputs = Inputs(
        snapshot=lambda: state.snapshot(clock.now()),
        assessment=lambda: assessor.latest,
        history=assessor.history,
        health=pipeline.health,
        live=server.live,
        ready=server.readiness,
        step=assessor.step,
    )
    status = StatusEndpoint(inputs, [w.name for w in config.windows], clock)
    watched = [s.path for s in config.sources] + ([config.reference] if config.reference else [])
    return Sidecar(
        config, pipeline, server, engine, watched, waker, bodies, listen_address, reloads
    )


def run_until(sidecar: Sidecar, control: Control, load: Callable[[], Config] | None = None) -> None:
    """Serve until asked to stop; reload the config from ``load`` when asked (SIGHUP)."""
    sidecar.start()
    try:
        while control.next() == "reload":
            if load is None:
                log.info("reload asked, but this sidecar has no config file to read again")
                continue
            sidecar.reload(load)
    finally:
        sidecar.stop(control.reason)
