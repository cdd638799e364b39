"""Regenerate the vendored prometheus-operator schemas in this directory.

Not run by the test suite (the JSON files are committed so that the tests work offline). Run it
in a scratch virtualenv when moving to a newer prometheus-operator:

    python3 -m venv /tmp/crd && /tmp/crd/bin/pip install \\
        cloudcoil==0.6.0 cloudcoil-models-prometheus-operator==0.80.1.0
    /tmp/crd/bin/python tests/schemas/prometheus-operator/regenerate.py

cloudcoil-models-prometheus-operator (PyPI, Apache-2.0) holds typed models generated from the
CustomResourceDefinitions of prometheus-operator v0.80.1; their JSON Schema is the CRDs'
openAPIV3Schema (field names, types, enums, patterns, required fields). Two changes are made.
As kubeconform and kubernetes-json-schema's "strict" schemas do, every object that lists its
properties refuses others (``additionalProperties: false``), which is what the API server's
strict field validation (kubectl's default since Kubernetes 1.27) does with an unknown or
misspelt field. And a Go regular expression with a flag group after ``^`` gets the flag moved
to the front, the only place Python's ``re`` accepts it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cloudcoil.models.prometheus_operator import v1  # type: ignore[import-not-found]

HERE = Path(__file__).resolve().parent
SOURCE = "cloudcoil-models-prometheus-operator 0.80.1.0 (prometheus-operator v0.80.1 CRDs)"


def strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        pattern = out.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(?i)"):
            # Go's RE2 takes a flag group anywhere; Python's re only at the start (same meaning).
            out["pattern"] = "(?i)^" + pattern.removeprefix("^(?i)")
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def main() -> None:
    for model in (v1.PodMonitor, v1.PrometheusRule):
        schema = strict(model.model_json_schema(by_alias=True))
        schema["$comment"] = f"monitoring.coreos.com/v1 {model.__name__}, from {SOURCE}"
        path = HERE / f"{model.__name__.lower()}-monitoring-v1.json"
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
