"""The metric families of ``/metrics``, one module per thing they say, built fresh at every
render from one ``Snapshot`` (and the latest ``Assessment``), computing nothing.

``model`` (what each model version did), ``drift`` (how its windows were judged),
``reference`` (the development profile beside them), ``fleet`` (the per-cell counters that
recording rules pool across replicas), ``health`` (the sidecar itself). ``collector`` puts them
together; ``bodies`` caches their rendered text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from exporter.exposition import Family

MODEL_LABELS = ("model", "version")


def family(
    kind: str,
    name: str,
    help_text: str,
    labels: Sequence[str] = (),
    value: float | None = None,
    samples: Iterable[tuple[Sequence[str], float]] = (),
) -> Family:
    """A family, with its one unlabelled sample when ``value`` is given, and ``samples``
    (label values, value) in order."""
    result = Family(name, kind, help_text, tuple(labels))
    if value is not None:
        result.add((), value)
    for label_values, sample in samples:
        result.add(label_values, sample)
    return result
