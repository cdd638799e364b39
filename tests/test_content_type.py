"""The scrape format negotiated from ``Accept`` (exporter/scrape.py ``content_type``) against
prometheus_client's ``choose_encoder``, which the server called before: the same
``Content-Type`` for every header. Where it raised (a version that does not compare with 1.0.0),
ours answers as it does without the media types that made it raise.

The oracle is the negotiation of prometheus_client 0.26, the locked version, which knows the
1.0.0 text format and the escaping schemes; older ones (0.20, the declared floor) do not, so the
comparisons run where 0.26 or later is installed. ``content_type`` itself does not depend on the
installed prometheus_client (the sidecar does not load it), and the explicit cases below run at
every version."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client.exposition import choose_encoder

from exporter.scrape import content_type

ORACLE = tuple(int(part) for part in version("prometheus_client").split(".")[:2]) >= (0, 26)
with_the_oracle = pytest.mark.skipif(
    not ORACLE, reason="prometheus_client before 0.26 negotiates without the 1.0.0 text format"
)

# What Prometheus 2 and 3 send, and the edges of the negotiation: versions below, at and past
# 1.0.0, escaping schemes known and unknown, parameters spaced, cased and repeated.
HEADERS = [
    "",
    "*/*",
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "text/plain;version=0.0.4;q=1,*/*;q=0.1",
    "text/plain",
    "text/plain; version=1.0.0",
    "text/plain;version=1.0.0;escaping=dots",
    "text/plain;version=1.0.0;escaping=values",
    "text/plain;version=1.0.0;escaping=nonsense",
    "text/plain;escaping=dots",
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text;version=2.0.0;escaping=underscores",
    "application/openmetrics-text;version=0.0.1",
    "application/openmetrics-text;version=0.0.1,text/plain;version=1.0.0",
    "application/openmetrics-text;version=",
    "application/openmetrics-text;version = 1.0.0",
    "application/openmetrics-text;Version=1.0.0",
    "application/openmetrics-text;version=1.0.0;version=0.0.1;escaping=dots;escaping=values",
    "APPLICATION/OPENMETRICS-TEXT;version=1.0.0",
    "  application/openmetrics-text  ;version=1.0.0",
    "application/openmetrics-text;version=10",
    "application/openmetrics-text;version=2.x",
    "application/openmetrics-text;version=1.0.0.0",
    "text/html,application/openmetrics-text;version=1",
]


def _theirs(accept: str) -> str | type[Exception]:
    """choose_encoder's answer, once the media types it raises on alone are left out (it
    takes them in order, the first it knows winning, so each is judged on its own)."""
    kept = []
    for media in accept.split(","):
        try:
            choose_encoder(media)
        except TypeError:
            continue
        kept.append(media)
    try:
        return choose_encoder(",".join(kept))[1]
    except Exception as exc:  # an error of another kind would be part of the answer
        return type(exc)


def _ours(accept: str) -> str | type[Exception]:
    try:
        return content_type(accept)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        ("", "text/plain; version=0.0.4; charset=utf-8"),
        (
            HEADERS[2],
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
        ),
        (HEADERS[4], "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=0.0.1", "text/plain; version=0.0.4; charset=utf-8"),
        (
            "text/plain;version=1.0.0;escaping=allow-utf-8",
            "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
        ),
    ],
)
def test_what_prometheus_asks_for_gets_its_format(accept: str, answer: str) -> None:
    """At every prometheus_client version: Prometheus 3's and 2's headers, OpenMetrics before
    1.0.0 (not served), and the 1.0.0 text format with its escaping."""
    assert content_type(accept) == answer


@with_the_oracle
@pytest.mark.parametrize("accept", HEADERS)
def test_the_format_is_negotiated_as_prometheus_client_negotiates_it(accept: str) -> None:
    assert _ours(accept) == _theirs(accept)


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        ("text/plain;version=1.x", "text/plain; version=0.0.4; charset=utf-8"),
        (
            "application/openmetrics-text;version=x,application/openmetrics-text",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        (
            "text/plain;version=1.beta,text/plain;version=1.0.0",
            "text/plain; version=1.0.0; charset=utf-8; escaping=underscores",
        ),
    ],
)
def test_a_version_that_does_not_compare_is_passed_over(accept: str, answer: str) -> None:
    """``1.x`` compares a word with a number: prometheus_client raised, and the connection was
    dropped with a traceback in the log. Now that media type is passed over."""
    if ORACLE:
        with pytest.raises(TypeError):
            choose_encoder(accept)
    assert content_type(accept) == answer


_TYPES = st.sampled_from(
    ["application/openmetrics-text", "text/plain", "*/*", "text/html", " text/plain ", ""]
)
_PARAMS = st.sampled_from(
    [
        "version=1.0.0",
        "version=0.0.4",
        "version=0.0.1",
        "version=2.0.0",
        "version=1",
        "version=",
        "version=1.0.0.1",
        " version=1.0.0 ",
        "escaping=allow-utf-8",
        "escaping=underscores",
        "escaping=dots",
        "escaping=values",
        "escaping=other",
        "q=0.5",
        "charset=utf-8",
        "x",
    ]
)
_MEDIA = st.builds(
    lambda kind, params: ";".join([kind, *params]), _TYPES, st.lists(_PARAMS, max_size=4)
)


@with_the_oracle
@given(st.lists(_MEDIA, max_size=4).map(",".join))
@example("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8")
def test_any_accept_header_of_these_parts_gets_the_same_answer(accept: str) -> None:
    assert _ours(accept) == _theirs(accept)


@with_the_oracle
@given(st.text(max_size=60))
def test_any_text_gets_the_same_answer(accept: str) -> None:
    assert _ours(accept) == _theirs(accept)
