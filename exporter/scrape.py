"""Serving scrapes: one render at a time per format, shared by the scrapes that wait for it,
``Accept-Encoding`` negotiated by q-values, and the format by ``Accept`` as prometheus_client
negotiates it.

Rendering is CPU work under the interpreter lock, competing with ingestion. With a render per
request, 200 concurrent scrapers mean 200 renders competing for one core; with ``Renders``,
scrapes that arrive while a render runs share the *next* one (it starts after they arrived, so
none gets older numbers than it asked for), and a crowd of scrapers costs one render at a time
(each shared by as many scrapes as there are HTTP workers waiting for it).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from exporter.deflate import Body

log = logging.getLogger(__name__)

RENDER_FAILURES_UNHEALTHY = 3  # this many failed renders in a row fail /healthz


def accepts_gzip(values: Sequence[str]) -> bool:
    """Whether to gzip, from the ``Accept-Encoding`` header(s), by RFC 9110 q-values.

    gzip is used when its weight (its own, else that of ``*``) is above zero and not below the
    weight the client gave the uncompressed body (``identity``'s, else ``*``'s; unweighted, it
    loses to any acceptable coding). So ``gzip;q=0``, ``identity`` alone, ``*;q=0`` or
    ``identity;q=1, gzip;q=0.5`` get the body as it is. (prometheus_client's ``gzip_accepted``
    ignores q-values.)
    """
    weights: dict[str, float] = {}
    for value in values:
        for item in value.split(","):
            coding, *params = (part.strip() for part in item.split(";"))
            if not coding:
                continue
            q = 1.0
            for param in params:
                name, _, number = param.partition("=")
                if name.strip().lower() == "q":
                    try:
                        q = float(number)
                    except ValueError:
                        q = 0.0
                    q = min(q, 1.0) if q >= 0.0 else 0.0  # NaN too
            weights[coding.lower()] = q
    star = weights.get("*")
    gzip_q = weights.get("gzip", weights.get("x-gzip", star if star is not None else 0.0))
    identity_q = weights.get("identity", star if star is not None else 0.0)
    return gzip_q > 0.0 and gzip_q >= identity_q


# prometheus_client's content types (its exposition's CONTENT_TYPE_PLAIN_0_0_4 and
# CONTENT_TYPE_LATEST, and OpenMetrics' CONTENT_TYPE_LATEST) and escaping schemes.
TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
OPENMETRICS_1_0_0 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
ESCAPINGS = ("allow-utf-8", "underscores", "dots", "values")


def content_type(accept: str) -> str:
    """The ``Content-Type`` of the answer to ``Accept``: OpenMetrics when asked for (the
    writer's format follows the type's first word), else the Prometheus text format.

    The same answer as prometheus_client's ``choose_encoder`` (0.26; the tests hold the two to
    it), without loading prometheus_client, whose modules cost a sidecar ~7 ms of CPU at
    start-up. Like it, the first media type it knows wins, whatever the q-values. Unlike it, a
    media type whose version does not compare with ``1.0.0`` (``1.x``) is passed over, as one
    it does not know: its ``TypeError`` dropped the connection, with a traceback in the log for
    every such scrape."""
    for accepted in (accept or "").split(","):
        tokens = accepted.split(";")
        kind = tokens[0].strip()
        if kind == "application/openmetrics-text":
            version = _parameter(tokens, "version")
            if not version:
                return OPENMETRICS_1_0_0
            if _at_least_1(version):
                return (
                    f"application/openmetrics-text; version={version}; charset=utf-8; "
                    f"escaping={_escaping(tokens)}"
                )
        elif kind == "text/plain":
            version = _parameter(tokens, "version")
            if version and _at_least_1(version):
                return f"{TEXT_1_0_0}; escaping={_escaping(tokens)}"
    return TEXT_0_0_4


def _parameter(tokens: list[str], name: str) -> str:
    """The first ``name=value`` parameter's value, as written; "" without one."""
    for token in tokens:
        if "=" in token:
            key, value = token.strip().split("=", 1)
            if key == name:
                return value
    return ""


def _escaping(tokens: list[str]) -> str:
    value = _parameter(tokens, "escaping")
    return value if value in ESCAPINGS else "underscores"


def _at_least_1(version: str) -> bool:
    """Whether a version is 1.0.0 or later; one that does not compare with it is not."""
    try:
        return _version(version) >= (1, 0, 0)
    except TypeError:  # a word where a number is: "1.x"
        return False


def _version(text: str) -> tuple[int | str, ...]:
    """Dotted parts, numbers where ``int`` takes them."""
    parts: list[int | str] = []
    for part in text.split("."):
        try:
            parts.append(int(part))
        except ValueError:
            parts.append(part)
    return tuple(parts)


# -- rendering -------------------------------------------------------------------------------


class Result:
    """One render, shared by the scrapes that waited for it; gzipped at most once."""

    def __init__(self, body: Body | None, error: Exception | None) -> None:
        self.body = body
        self.error = error


class Renders:
    """One render at a time per format; scrapes that arrive during one share the next.

    A scrape waits for a render that *starts* after it arrived (never an older one), so its
    numbers are as fresh as with a render of its own. Failed renders in a row are counted for
    /healthz: a registry that raises on every scrape is a dead exporter even if ingestion runs.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._started: Counter[str] = Counter()
        self._done: Counter[str] = Counter()
        self._running: set[str] = set()
        self._last: dict[str, Result] = {}
        self.failures_in_a_row = 0
        self.last_error = ""
        self.renders = 0
        self.waiting = 0  # scrapes waiting for a render

    def get(self, key: str, render: Callable[[], Body]) -> Result:
        with self._cond:
            wanted = self._started[key] + 1
            # A render lets go of the last result when it starts (not two bodies at once): a
            # scrape that finds none takes the running render's, which is fresher still.
            while self._done[key] < wanted or key not in self._last:
                if key not in self._running:
                    return self._render(key, render)
                self.waiting += 1
                try:
                    self._cond.wait()
                finally:
                    self.waiting -= 1
            return self._last[key]

    def _render(self, key: str, render: Callable[[], Body]) -> Result:
        """Called with the condition held; renders without it."""
        self._last.pop(key, None)
        self._started[key] += 1
        number = self._started[key]
        self._running.add(key)
        self._cond.release()
        try:
            try:
                result = Result(render(), None)
            except Exception as exc:  # a scrape must get an answer, never a dropped connection
                log.exception("error rendering metrics")
                result = Result(None, exc)
        finally:
            self._cond.acquire()
        self._running.discard(key)
        self._done[key] = number
        self._last[key] = result
        self.renders += 1
        if result.error is None:
            self.failures_in_a_row = 0
        else:
            self.failures_in_a_row += 1
            # The type only: the message may quote log content, and /healthz is often
            # excluded from authentication for the kubelet's probes. The log has the rest.
            self.last_error = type(result.error).__name__
        self._cond.notify_all()
        return result

    def healthy(self) -> tuple[bool, str]:
        with self._cond:
            if self.failures_in_a_row >= RENDER_FAILURES_UNHEALTHY:
                return False, (
                    f"the last {self.failures_in_a_row} renders of /metrics failed "
                    f"({self.last_error}; see the log)"
                )
        return True, "ok"
