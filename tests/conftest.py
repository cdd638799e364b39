"""Fixtures shared by the whole suite: leak checks, and real processes for end-to-end tests."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests import harness
from tests.harness import (
    Alertmanager,
    ProcessGroup,
    Prometheus,
    ScrapeTarget,
    SidecarProcess,
    WebhookReceiver,
)

# Hypothesis' per-example deadline and its "too slow" health check are wall-clock assertions: on
# a busy machine they fail tests whose properties hold. pytest-timeout bounds each test instead.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Keep each phase's report on the item, so fixtures know at teardown whether a test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """A test that leaves a non-daemon thread running fails: it would hang the interpreter's
    exit and make later tests depend on earlier ones."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"test leaked threads: {[t.name for t in leaked]}"


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessGroup]:
    """Everything started through this is stopped at teardown, and its output is shown when the
    test failed."""
    group = ProcessGroup(tmp_path / "logs")
    try:
        yield group
    finally:
        group.stop_all()
        if group.started and _failed(request):
            print(group.outputs(), file=sys.stderr)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def start_prometheus(processes: ProcessGroup, tmp_path: Path) -> Callable[..., Prometheus]:
    """``start_prometheus(targets, rule_files=(), alertmanagers=(), scrape_interval="1s", ...)``"""
    count = 0

    def start(targets: Iterable[ScrapeTarget], **kwargs: Any) -> Prometheus:
        nonlocal count
        count += 1
        return Prometheus.start(processes, tmp_path / f"prometheus-{count}", targets, **kwargs)

    return start


@pytest.fixture
def start_alertmanager(processes: ProcessGroup, tmp_path: Path) -> Callable[..., Alertmanager]:
    """``start_alertmanager(webhook_url=... | config_text=...)``"""
    count = 0

    def start(**kwargs: Any) -> Alertmanager:
        nonlocal count
        count += 1
        return Alertmanager.start(processes, tmp_path / f"alertmanager-{count}", **kwargs)

    return start


@pytest.fixture
def start_sidecar(processes: ProcessGroup) -> Callable[..., SidecarProcess]:
    """``start_sidecar(config_path, port=None, extra_args=(), env=None, cwd=None, ready=None)``:
    the real sidecar, returned once its /readyz answers 200."""

    def start(config_path: Path, port: int | None = None, **kwargs: Any) -> SidecarProcess:
        return harness.start_sidecar(processes, config_path, port, **kwargs)

    return start


@pytest.fixture
def sidecar(start_sidecar: Callable[..., SidecarProcess]) -> Callable[..., SidecarProcess]:
    """The same factory as ``start_sidecar``, under the shorter name."""
    return start_sidecar
