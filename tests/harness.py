"""Real processes for end-to-end tests: the sidecar, Prometheus, Alertmanager and promtool.

Everything listens on 127.0.0.1 on a free port, every wait goes through the one bounded
``wait_until``, and every process is started through a ``ProcessGroup`` that stops it at teardown,
so a failing test leaves nothing running and says what the process printed.

Bounds are generous on purpose: the suite must pass on a shared machine 5-10x slower than a
quiet laptop. A wait returns as soon as its condition holds, so a large bound costs nothing when
things work; it only decides how long a broken run takes to say so.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import pytest
import yaml

T = TypeVar("T")

# The bound for anything that happens on its own soon (a process answering, a line counted, a
# scrape, a rule evaluated, an alert delivered). Normally a few seconds at most.
WAIT = 120.0
# A command doing real work to completion (replay of a long log, a baseline): it took up to ~16x
# its idle time with both cores busy. pytest-timeout (300 s per test) stays the outer bound.
RUN_TIMEOUT = 240.0
HTTP_TIMEOUT = 30.0  # one request to a local process that may be busy ingesting
STOP_TIMEOUT = 60.0  # SIGTERM to exit, including the sidecar's drain and checkpoint


@functools.cache
def tool(name: str) -> str:
    """The path of a system binary the tests run (prometheus, promtool, amtool, ...).

    Looked up on PATH, once; a missing one fails the test that needs it, naming the fix, rather
    than being skipped (a skipped end-to-end test would hide exactly what it is there to catch).
    """
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH; scripts/install-system-deps.sh installs it", pytrace=False
        )
    return path


def wait_until(
    condition: Callable[[], T | Literal[False] | None],
    timeout: float,
    interval: float = 0.05,
    message: str = "",
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    The only way tests wait for real processes: bounded, and on timeout the assertion says what
    was awaited and the last value seen, which usually explains the failure. Exceptions raised by
    ``condition`` propagate (a process that died should fail the wait at once, not time out).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        value = condition()
        if value:
            return value
        last = value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {message or repr(condition)}; "
                f"last value: {last!r}"
            )
        time.sleep(interval)


def free_port() -> int:
    """A port free on 127.0.0.1 right now (another process could take it; rare enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- HTTP --------------------------------------------------------------------------------------


def http_get(url: str, timeout: float = HTTP_TIMEOUT) -> tuple[int, bytes] | None:
    """``(status, body)``, or None when nothing answers (not listening yet, or already gone)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def http_status(url: str) -> int | None:
    got = http_get(url)
    return None if got is None else got[0]


def http_request_json(
    url: str, body: object = None, method: str | None = None, timeout: float = HTTP_TIMEOUT
) -> Any:
    """Send JSON (POST when there is a body) and decode the JSON answer; HTTP errors raise."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw.strip() else None


# --- processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Runs in the child before exec: if pytest itself is killed, its servers go too."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


class ManagedProcess:
    """A child process whose stdout and stderr go to files, so failures can quote them."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stdout: IO[bytes] = self.stdout_path.open("wb")
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            env=full_env,
            cwd=cwd,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  (no threads fork here in practice)
        )
        self.pid = self._popen.pid

    @property
    def returncode(self) -> int | None:
        """None while running."""
        return self._popen.poll()

    def running(self) -> bool:
        return self._popen.poll() is None

    def assert_running(self) -> None:
        """Fail at once, quoting the output, when the process has exited."""
        code = self._popen.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with {code}\n{self.output()}")

    def wait_ready(self, condition: Callable[[], object], timeout: float, message: str) -> None:
        """Wait for ``condition``, failing early if the process dies meanwhile."""

        def check() -> object:
            self.assert_running()
            return condition()

        try:
            wait_until(check, timeout, interval=0.05, message=f"{self.name}: {message}")
        except AssertionError as e:
            if self.running():
                raise AssertionError(f"{e}\n{self.output()}") from None
            raise

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, a bounded wait, then SIGKILL; returns the exit code. Safe to call twice.

        SIGCONT follows the SIGTERM, so a process a test left stopped (SIGSTOP) handles it."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(signal.SIGTERM)
                self._popen.send_signal(signal.SIGCONT)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self._popen.kill()
                self._popen.wait(timeout=timeout)
        self._stdout.close()
        self._stderr.close()
        return self._popen.returncode

    def output(self, limit: int = 8000) -> str:
        """The tail of stdout and stderr, for assertion messages."""
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = path.read_bytes().decode(errors="replace") if path.exists() else ""
            if len(text) > limit:
                text = "...\n" + text[-limit:]
            parts.append(f"--- {self.name} {label} ---\n{text}")
        return "\n".join(parts)


class ProcessGroup:
    """Starts processes and stops all of them, newest first (the ``processes`` fixture)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ManagedProcess] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        proc = ManagedProcess(self.unique_name(name), argv, self.log_dir, env=env, cwd=cwd)
        self.started.append(proc)
        return proc

    def unique_name(self, name: str) -> str:
        """``name``, or ``name-2``... so two instances never share log files."""
        names = {p.name for p in self.started}
        unique, n = name, 1
        while unique in names:
            n += 1
            unique = f"{name}-{n}"
        return unique

    def adopt(self, proc: ManagedProcess) -> ManagedProcess:
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    def outputs(self) -> str:
        return "\n".join(p.output() for p in self.started)


def run_tool(
    name: str, *args: str, input: str | None = None, timeout: float = WAIT
) -> subprocess.CompletedProcess[str]:
    """Run a system binary (see ``tool``) to completion, capturing its text output."""
    return subprocess.run(
        [tool(name), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def promtool(
    *args: str, input: str | None = None, timeout: float = WAIT
) -> subprocess.CompletedProcess[str]:
    """Run promtool; ``check metrics`` reads the exposition text from ``input``."""
    return run_tool("promtool", *args, input=input, timeout=timeout)


# --- Prometheus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    metrics_path: str = "/metrics"
    labels: Mapping[str, str] = field(default_factory=dict)
    # More scrape_config keys for the job, e.g. scheme, tls_config, basic_auth.
    settings: Mapping[str, Any] = field(default_factory=dict)


def prometheus_config(
    targets: Iterable[ScrapeTarget],
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    rule_files: Iterable[Path | str] = (),
    alertmanagers: Iterable[str] = (),
) -> dict[str, Any]:
    """prometheus.yml as data: one scrape job per distinct job name, in the order given."""
    jobs: dict[str, list[ScrapeTarget]] = {}
    for t in targets:
        jobs.setdefault(t.job, []).append(t)
    scrape_configs = []
    for job, ts in jobs.items():
        paths = {t.metrics_path for t in ts}
        if len(paths) != 1:
            raise ValueError(f"job {job}: all targets of a job share one metrics_path")
        if any(t.settings != ts[0].settings for t in ts):
            raise ValueError(f"job {job}: all targets of a job share one set of settings")
        scrape_configs.append(
            {
                "job_name": job,
                "metrics_path": paths.pop(),
                **ts[0].settings,
                "static_configs": [{"targets": [t.address], "labels": dict(t.labels)} for t in ts],
            }
        )
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "scrape_configs": scrape_configs,
    }
    if rule_files:
        config["rule_files"] = [str(Path(p).resolve()) for p in rule_files]
    ams = list(alertmanagers)
    if ams:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": ams}]}]}
    return config


class Prometheus:
    """A real Prometheus on 127.0.0.1 and the bits of its HTTP API the tests read."""

    def __init__(self, process: ManagedProcess, port: int, config_path: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.config_path = config_path

    @classmethod
    def start(
        cls,
        processes: ProcessGroup,
        workdir: Path,
        targets: Iterable[ScrapeTarget],
        rule_files: Iterable[Path | str] = (),
        alertmanagers: Iterable[str] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        port: int | None = None,
        timeout: float = WAIT,
    ) -> Prometheus:
        """``port`` may be chosen beforehand (``free_port()``) so a target can name it."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = port if port is not None else free_port()
        config_path = workdir / "prometheus.yml"
        config = prometheus_config(
            targets, scrape_interval, evaluation_interval, rule_files, alertmanagers
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        proc = processes.start(
            "prometheus",
            [
                tool("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            cwd=workdir,
        )
        prom = cls(proc, port, config_path)
        proc.wait_ready(lambda: http_status(f"{prom.url}/-/ready") == 200, timeout, "/-/ready")
        return prom

    def api(self, path: str, params: Mapping[str, str | Sequence[str]] | None = None) -> Any:
        """GET /api/v1/<path>; returns ``data``, raising when the API reports an error."""
        query = urllib.parse.urlencode(params or {}, doseq=True)
        got = http_get(f"{self.url}/api/v1/{path}?{query}")
        if got is None:
            self.process.assert_running()
            raise AssertionError(f"prometheus did not answer /api/v1/{path}")
        status, body = got
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"/api/v1/{path} {dict(params or {})}: {status} {doc}")
        return doc["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query (now, or at the Unix time ``at``); a scalar or string result comes
        back as one series without labels."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        data = self.api("query", params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_value(self, promql: str) -> float | None:
        """The single value of a query, None when it has no result; several series fail."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{promql} returned {len(result)} series: {result}")
        return float(result[0]["value"][1])

    def wait_for_query(
        self,
        promql: str,
        timeout: float = WAIT,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            self.process.assert_running()
            result = self.query(promql)
            return result if predicate(result) else None

        return wait_until(check, timeout, interval=0.2, message=f"query {promql!r}")

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets", {"state": "active"})["activeTargets"]
        return active

    def wait_for_target_up(self, job: str, timeout: float = WAIT) -> list[dict[str, Any]]:
        """Wait until the job has targets and all of them were scraped successfully."""

        def check() -> list[dict[str, Any]] | None:
            self.process.assert_running()
            mine = [t for t in self.targets() if t["labels"].get("job") == job]
            return mine if mine and all(t["health"] == "up" for t in mine) else None

        return wait_until(check, timeout, interval=0.2, message=f"targets of job {job} up")

    def series(self, match: str) -> list[dict[str, str]]:
        result: list[dict[str, str]] = self.api("series", {"match[]": [match]})
        return result

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        params = {"match[]": [match]} if match else None
        result: list[str] = self.api(f"label/{urllib.parse.quote(label)}/values", params)
        return result

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        """Rule groups as /api/v1/rules reports them (each with its rules and their health)."""
        result: list[dict[str, Any]] = self.api("rules")["groups"]
        return result

    def reload(self) -> None:
        """Re-read the config and rule files (needs --web.enable-lifecycle, which start sets)."""
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT):
            pass


# --- Alertmanager ------------------------------------------------------------------------------


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """Route everything to one webhook, fast enough for a test to see a notification in ~1 s."""
    return {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname"],
            "group_wait": "200ms",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "webhook",
                "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
            }
        ],
    }


class Alertmanager:
    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"

    @classmethod
    def start(
        cls,
        processes: ProcessGroup,
        workdir: Path,
        webhook_url: str | None = None,
        config_text: str | None = None,
        port: int | None = None,
        timeout: float = WAIT,
    ) -> Alertmanager:
        """Either route everything to ``webhook_url`` or use ``config_text`` as it is."""
        if (webhook_url is None) == (config_text is None):
            raise ValueError("give exactly one of webhook_url and config_text")
        workdir.mkdir(parents=True, exist_ok=True)
        port = port if port is not None else free_port()
        config_path = workdir / "alertmanager.yml"
        if config_text is None:
            assert webhook_url is not None
            config_text = yaml.safe_dump(alertmanager_config(webhook_url), sort_keys=False)
        config_path.write_text(config_text)
        proc = processes.start(
            "alertmanager",
            [
                tool("prometheus-alertmanager"),
                f"--config.file={config_path}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            cwd=workdir,
        )
        am = cls(proc, port)
        proc.wait_ready(lambda: http_status(f"{am.url}/-/ready") == 200, timeout, "/-/ready")
        return am

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        http_request_json(f"{self.url}/api/v2/alerts", alerts)

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_request_json(f"{self.url}/api/v2/alerts")
        return result


class WebhookReceiver:
    """An HTTP endpoint standing in for a pager: records every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver._lock:
                    receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output for failures that matter."""

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook"
        )
        self._thread.start()

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.bodies)

    def received_alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification, in arrival order (Alertmanager webhook format)."""
        return [a for body in self.received() for a in body.get("alerts", [])]

    def received_alert_names(self, status: str | None = "firing") -> set[str]:
        """Names of alerts notified with ``status`` (None: any status)."""
        return {
            a["labels"]["alertname"]
            for a in self.received_alerts()
            if status is None or a.get("status") == status
        }

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=WAIT)
        self._server.server_close()


# --- the sidecar -------------------------------------------------------------------------------


class SidecarProcess(ManagedProcess):
    """``python -m exporter run`` on 127.0.0.1:<port>."""

    port: int
    url: str

    def metrics_text(self) -> str:
        got = http_get(f"{self.url}/metrics")
        if got is None or got[0] != 200:
            self.assert_running()
            raise AssertionError(f"sidecar /metrics answered {got!r}")
        return got[1].decode()


def start_sidecar(
    processes: ProcessGroup,
    config_path: Path,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = WAIT,
    ready: Callable[[SidecarProcess], bool] | None = None,
) -> SidecarProcess:
    """Start the real sidecar and wait until it is ready: /readyz answers 200 once every source
    was polled, so lines a test writes afterwards are counted even with ``start_at: end``.
    ``ready`` replaces that check (e.g. over TLS)."""
    port = port if port is not None else free_port()
    argv = [
        sys.executable,
        "-m",
        "exporter",
        "run",
        "--config",
        str(config_path),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        *extra_args,
    ]
    proc = SidecarProcess(
        processes.unique_name("sidecar"),
        argv,
        processes.log_dir,
        env=env,
        cwd=cwd or config_path.parent,
    )
    proc.port = port
    proc.url = f"http://127.0.0.1:{port}"
    processes.adopt(proc)
    check = ready if ready is not None else lambda p: http_status(f"{p.url}/readyz") == 200
    proc.wait_ready(lambda: check(proc), timeout, "ready")
    return proc
