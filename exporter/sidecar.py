"""The composition root: wire source → records → state → collector → HTTP, and run it.

The only place that builds the real clock, threads and sockets together; the CLI parses
arguments and calls this, tests call it with their own settings.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from exporter.clock import Clock, SystemClock
from exporter.collector import registry
from exporter.config import parse_listen_address
from exporter.config_types import Config
from exporter.pipeline import Pipeline
from exporter.records import Decoder
from exporter.reload import ReferenceFile
from exporter.server import MetricsServer
from exporter.source import Tailer
from exporter.state import State
from exporter.watch import Waker, start_watch

log = logging.getLogger(__name__)


@dataclass
class Sidecar:
    config: Config
    pipeline: Pipeline
    server: MetricsServer
    state: State
    _stop_watch: object = None

    def start(self) -> None:
        self.server.start()
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
        if callable(self._stop_watch):
            self._stop_watch()
        self.server.stop()


def build(config: Config, listen_address: str | None = None, clock: Clock | None = None) -> Sidecar:
    if listen_address is not None:
        config = replace(config, listen_address=listen_address)
    clock = clock if clock is not None else SystemClock()
    decoder = Decoder(config.fields, config.late_after, config.future_after, config.label_join)
    state = State(config, decoder.layout, [v.values for v in decoder.vocabularies])
    reference_file = None
    if config.reference is not None:
        reference_file = ReferenceFile(config.reference)
        state.set_reference(reference_file.load_now())
    tailer = Tailer(config.sources, config.tail, clock)
    waker = Waker()
    watched = [s.path for s in config.sources] + ([config.reference] if config.reference else [])
    stop_watch = start_watch(watched, waker) if config.tail.watch else None
    pipeline = Pipeline(
        tailer, decoder, state, clock, config.tail, waker, reference_file, config.drift
    )
    metrics = registry(lambda: state.snapshot(clock.now()), pipeline.health)
    host, port = parse_listen_address(config.listen_address)
    server = MetricsServer(host, port, metrics, pipeline.healthy)
    return Sidecar(config, pipeline, server, state, stop_watch)


def run_until(sidecar: Sidecar, stop: threading.Event) -> None:
    sidecar.start()
    try:
        stop.wait()
    finally:
        sidecar.stop()
