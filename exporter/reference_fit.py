"""Whether a reference profile describes the model this config maps.

A profile is valid JSON with valid numbers whatever model it was built for; loaded for another
model it would report nonsense (every prediction out of range, PSI 10 on every field) instead
of an error. The profile's field names and kinds, and whether it is a classifier's or a
regression's, are compared with the config's mapping. A field the config maps but the profile
lacks is allowed: a development log may not carry it (latency, typically), and that field is
simply not compared.

Kept to one function over a loaded ``Reference`` and the config's fields, so it holds whatever
the profile's file format becomes.
"""

from __future__ import annotations

from exporter.config_types import FieldsConfig
from exporter.reference import Reference

REBUILD = "rebuild it from this config with `model-exporter baseline`"


def field_mismatches(reference: Reference, fields: FieldsConfig) -> list[str]:
    """Problems naming the fields that differ (empty when the profile fits)."""
    numeric = {spec.name for spec in fields.numeric}
    categorical = {spec.name for spec in fields.categorical}
    problems = []
    unknown = sorted((set(reference.numeric) | set(reference.categorical)) - numeric - categorical)
    if unknown:
        problems.append(
            f"the profile has fields this config does not map: {', '.join(unknown)} "
            "(built for another model?)"
        )
    as_categorical = sorted(set(reference.numeric) & categorical)
    if as_categorical:
        problems.append(
            f"numeric in the profile, categorical in the config: {', '.join(as_categorical)}"
        )
    as_numeric = sorted(set(reference.categorical) & numeric)
    if as_numeric:
        problems.append(
            f"categorical in the profile, numeric in the config: {', '.join(as_numeric)}"
        )
    labelled = fields.ground_truth is not None
    if labelled and fields.regression and reference.error_ratio is not None:
        problems.append("the profile is a classifier's (error_ratio), the config a regression's")
    if labelled and not fields.regression and reference.mae is not None:
        problems.append("the profile is a regression's (mae, rmse), the config a classifier's")
    return [f"{problem}; {REBUILD}" for problem in problems]
