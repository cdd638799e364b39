"""The end-to-end harness proves itself against the real binaries before anything relies on it."""

from __future__ import annotations

import itertools
import os
import socket
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests import harness
from tests.harness import (
    WAIT,
    Alertmanager,
    ProcessGroup,
    Prometheus,
    ScrapeTarget,
    WebhookReceiver,
    free_port,
    promtool,
    wait_until,
)

pytest_plugins = ["pytester"]

SLEEPER = "import time; print('ready', flush=True); time.sleep(120)"
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)"
)


def test_wait_until_returns_the_first_truthy_value() -> None:
    values = iter([None, False, 0, [], "ready"])
    assert wait_until(lambda: next(values), timeout=WAIT, interval=0) == "ready"


def test_wait_until_reports_what_it_waited_for_and_the_last_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A manual clock: one second per look at it, so the deadline passes after the second
    call however slow the machine is."""
    ticks = itertools.count()
    monkeypatch.setattr(
        harness, "time", SimpleNamespace(monotonic=lambda: next(ticks), sleep=lambda _: None)
    )
    seen = []

    def condition() -> int | None:
        seen.append(1)
        return 0 if len(seen) > 1 else None

    with pytest.raises(AssertionError, match=r"the answer; last value: 0"):
        wait_until(condition, timeout=1.5, message="the answer")
    assert len(seen) == 2


def test_a_missing_system_binary_fails_naming_the_install_script() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"not on PATH; scripts/install-system-deps"):
        harness.tool("model-exporter-no-such-binary")


def test_free_port_can_be_bound() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def _printed_ready(proc: object) -> Callable[[], bool]:
    return lambda: "ready" in proc.stdout_path.read_text()  # type: ignore[attr-defined]


def test_stop_terminates_and_escalates_to_kill(processes: ProcessGroup) -> None:
    polite = processes.start("polite", [sys.executable, "-c", SLEEPER])
    stubborn = processes.start("stubborn", [sys.executable, "-c", STUBBORN])
    for proc in (polite, stubborn):
        proc.wait_ready(_printed_ready(proc), timeout=WAIT, message="prints ready")
    assert polite.stop() == -15
    assert stubborn.stop(timeout=0.5) == -9
    assert polite.returncode == -15
    assert stubborn.returncode == -9


def test_a_dead_process_fails_the_wait_at_once_with_its_output(processes: ProcessGroup) -> None:
    proc = processes.start("crash", [sys.executable, "-c", "import sys; sys.exit('boom')"])
    with pytest.raises(AssertionError, match=r"(?s)crash exited with 1.*boom"):
        proc.wait_ready(lambda: False, timeout=WAIT, message="never")


def test_failing_tests_still_stop_processes_and_threads_are_checked(
    pytester: pytest.Pytester,
) -> None:
    here = Path(__file__).parent
    pytester.makeconftest((here / "conftest.py").read_text())
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "harness.py").write_text((here / "harness.py").read_text())
    pid_file = pytester.path / "pid"
    pytester.makepyfile(
        test_inner=textwrap.dedent(
            f"""
            import sys, threading
            import pytest

            # The leaked thread runs until the module is done, so the leak check (at the end
            # of its test) finds it however slowly the machine gets there.
            release = threading.Event()

            @pytest.fixture(scope="module", autouse=True)
            def release_at_module_end():
                yield
                release.set()

            def test_fails_with_a_process(processes):
                proc = processes.start("sleeper", [sys.executable, "-c", {SLEEPER!r}])
                with open({str(pid_file)!r}, "w") as f:
                    f.write(str(proc.pid))
                assert False, "deliberate"

            def test_leaks_a_thread():
                threading.Thread(target=release.wait, name="leaky").start()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1, errors=1)
    result.stdout.re_match_lines([r".*test leaked threads: \['leaky'\]", r"--- sleeper stdout ---"])
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_promtool_accepts_valid_exposition_and_rejects_invalid() -> None:
    valid = textwrap.dedent(
        """\
        # HELP demo_requests_total Requests handled.
        # TYPE demo_requests_total counter
        demo_requests_total{code="200"} 3
        """
    )
    ok = promtool("check", "metrics", input=valid)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    broken = promtool("check", "metrics", input='demo_requests_total{code="200" 3\n')
    assert broken.returncode != 0
    assert "error" in (broken.stdout + broken.stderr).lower()

    unlinted = promtool("check", "metrics", input="# TYPE demo_requests counter\ndemo_requests 1\n")
    assert unlinted.returncode != 0
    assert "_total" in unlinted.stdout + unlinted.stderr


@pytest.mark.e2e
def test_prometheus_scrapes_itself(start_prometheus: Callable[..., Prometheus]) -> None:
    port = free_port()
    prom = start_prometheus([ScrapeTarget("self", f"127.0.0.1:{port}")], port=port)
    [target] = prom.wait_for_target_up("self")
    assert target["scrapeUrl"] == f"http://127.0.0.1:{port}/metrics"
    assert prom.query_value('up{job="self"}') == 1.0
    assert prom.query_value('up{job="absent"}') is None
    assert "self" in prom.label_values("job")
    assert [s["job"] for s in prom.series('up{job="self"}')] == ["self"]
    assert prom.query("1 + 1")[0]["value"][1] == "2"


@pytest.mark.e2e
def test_alertmanager_delivers_posted_alerts_to_the_webhook(
    start_alertmanager: Callable[..., Alertmanager], webhook: WebhookReceiver
) -> None:
    am = start_alertmanager(webhook_url=webhook.url)
    am.post_alerts([{"labels": {"alertname": "HarnessProbe", "severity": "page"}}])
    wait_until(
        lambda: "HarnessProbe" in webhook.received_alert_names(),
        timeout=WAIT,
        message="HarnessProbe at the webhook",
    )
    assert [a["labels"]["alertname"] for a in am.alerts()] == ["HarnessProbe"]


@pytest.mark.e2e
def test_rules_fire_through_prometheus_and_alertmanager(
    tmp_path: Path,
    start_prometheus: Callable[..., Prometheus],
    start_alertmanager: Callable[..., Alertmanager],
    webhook: WebhookReceiver,
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "harness",
                        "rules": [
                            {"record": "job:up:sum", "expr": "sum by (job) (up)"},
                            {"alert": "SelfScraped", "expr": 'up{job="self"} == 1'},
                        ],
                    }
                ]
            }
        )
    )
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    am = start_alertmanager(webhook_url=webhook.url)
    port = free_port()
    prom = start_prometheus(
        [ScrapeTarget("self", f"127.0.0.1:{port}")],
        port=port,
        rule_files=[rules],
        alertmanagers=[am.address],
    )
    [group] = prom.rules()
    assert [r["name"] for r in group["rules"]] == ["job:up:sum", "SelfScraped"]
    wait_until(
        lambda: "SelfScraped" in webhook.received_alert_names(),
        timeout=WAIT,
        message="SelfScraped at the webhook",
    )
    assert [a["labels"]["alertname"] for a in prom.alerts()] == ["SelfScraped"]
    assert prom.query_value('job:up:sum{job="self"}') == 1.0
