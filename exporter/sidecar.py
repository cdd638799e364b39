"""The composition root: wire source → records → state → collector → HTTP, and run it.

The only place that builds the real clock, threads and sockets together; the CLI parses
arguments and calls this, tests call it with their own settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from exporter.clock import Clock, SystemClock
from exporter.collector import registry
from exporter.config_types import Config
from exporter.decode import Decoder
from exporter.errors import ConfigError
from exporter.join import LabelJoin
from exporter.pipeline import Pipeline
from exporter.reload import ReferenceFile
from exporter.server import MetricsServer
from exporter.state import State
from exporter.tail.tailer import Tailer
from exporter.tail.watch import Stopper, Waker, start_watch
from exporter.validate import parse_listen_address

log = logging.getLogger(__name__)


@dataclass
class Sidecar:
    config: Config
    pipeline: Pipeline
    server: MetricsServer
    state: State
    watched: list[str]
    waker: Waker
    _stop_watch: Stopper | None = None

    def start(self) -> None:
        self.server.start()
        if self.config.tail.watch:
            self._stop_watch = start_watch(self.watched, self.waker)
        self.pipeline.start()
        log.info(
            "serving metrics on %s (port %d); tailing %s",
            self.config.listen_address,
            self.server.port,
            ", ".join(s.path for s in self.config.sources),
        )

    def stop(self) -> None:
        """Drain what was written, save positions, then close the port."""
        self.pipeline.stop()
        if self._stop_watch is not None:
            self._stop_watch()
        self.server.stop()


def build(
    config: Config,
    listen_address: str | None = None,
    clock: Clock | None = None,
    on_failure: Callable[[], None] | None = None,
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
    decoder = Decoder(config.fields, config.late_after, config.future_after, config.label_join)
    state = State(config, decoder.layout, [v.values for v in decoder.vocabularies])
    reference_file = None
    if config.reference is not None:
        reference_file = ReferenceFile(config.reference, config.sketch_relative_accuracy)
        state.set_reference(reference_file.load_now())
    join = None
    if config.label_join:
        join = LabelJoin(
            decoder.layout,
            decoder.class_names,
            config.label_join_timeout,
            config.label_join_capacity,
        )
    tailer = Tailer(config.sources, config.tail, clock)
    waker = Waker()
    pipeline = Pipeline(
        tailer,
        decoder,
        state,
        clock,
        config.tail,
        waker,
        reference_file,
        config.drift,
        join,
        on_failure,
    )
    metrics = registry(lambda: state.snapshot(clock.now()), pipeline.health)
    host, port = parse_listen_address(config.listen_address)
    server = MetricsServer(host, port, metrics, pipeline.healthy)
    watched = [s.path for s in config.sources] + ([config.reference] if config.reference else [])
    return Sidecar(config, pipeline, server, state, watched, waker)


def run_until(sidecar: Sidecar, stop: threading.Event) -> None:
    sidecar.start()
    try:
        stop.wait()
    finally:
        sidecar.stop()
