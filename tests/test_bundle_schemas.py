"""The Kubernetes manifests against the schemas of the Kubernetes API and of prometheus-operator.

No cluster runs here, so the API server's own validation stands in: Kubernetes' kinds are
checked with the JSON Schemas the ``kubernetes-validate`` package ships (strict: an unknown or
misspelt field is an error, as with kubectl's default field validation), the
prometheus-operator kinds with their schemas vendored in tests/schemas/ (see its README for the
source). Every manifest kustomize applies, including the PrometheusRule generated from the rule
files, must be covered by one or the other, and the tests below show that a wrong field fails.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
CRD_SCHEMAS = ROOT / "tests" / "schemas" / "prometheus-operator"
# The oldest and the newest Kubernetes the package has schemas for: what the manifests use must
# exist in both.
VERSIONS = (all_versions()[0], all_versions()[-1])
Manifest = dict[str, Any]


def manifests() -> list[tuple[str, Manifest]]:
    """(file, object) for every object kustomization.yaml applies."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [
        (resource, doc)
        for resource in kustomization["resources"]
        for doc in yaml.safe_load_all((K8S / resource).read_text())
        if doc
    ]


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    path = CRD_SCHEMAS / f"{kind.lower()}-monitoring-v1.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def problems(doc: Manifest, version: str) -> list[str]:
    """Every schema violation of one object, as "path: message"; empty when it is valid."""
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        assert doc["apiVersion"] == "monitoring.coreos.com/v1", doc["apiVersion"]
        validator = jsonschema.Draft202012Validator(crd_schema(doc["kind"]))
        # An optional field is "this type or null" (anyOf): best_match looks inside it for the
        # error that names the field itself.
        found = [jsonschema.exceptions.best_match([e]) for e in validator.iter_errors(doc)]
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found if e]
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.path))}: {e.message}"]
    return []


def find(kind: str) -> Manifest:
    (doc,) = [copy.deepcopy(d) for _, d in manifests() if d["kind"] == kind]
    return doc


# --- the bundle ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("resource", "doc"), manifests(), ids=[f"{r}:{d['kind']}" for r, d in manifests()]
)
def test_manifest_is_valid_against_its_schema(resource: str, doc: Manifest, version: str) -> None:
    assert problems(doc, version) == []


def test_every_kind_has_a_schema() -> None:
    """A kind without a schema would pass unchecked (kubernetes-validate only warns)."""
    for _, doc in manifests():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            assert (CRD_SCHEMAS / f"{doc['kind'].lower()}-monitoring-v1.json").exists()
        else:
            kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)  # raises if none


def test_vendored_schemas_are_valid_json_schemas_with_their_source() -> None:
    for kind in ("PodMonitor", "PrometheusRule"):
        schema = crd_schema(kind)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert "prometheus-operator" in schema["$comment"]
    readme = (CRD_SCHEMAS / "README.md").read_text()
    assert "Apache License 2.0" in readme
    assert (CRD_SCHEMAS / "LICENSE").read_text().lstrip().startswith("Apache License")


# --- a wrong field fails -------------------------------------------------------------------------


def _deployment_port_as_text(doc: Manifest) -> None:
    doc["spec"]["template"]["spec"]["containers"][1]["ports"][0]["containerPort"] = "10027"


def _deployment_misspelt_key(doc: Manifest) -> None:
    container = doc["spec"]["template"]["spec"]["containers"][1]
    container["volumeMount"] = container.pop("volumeMounts")


def _service_unknown_port_field(doc: Manifest) -> None:
    doc["spec"]["ports"][0]["containerPort"] = 10027


def _podmonitor_misspelt_endpoints(doc: Manifest) -> None:
    doc["spec"]["podMetricEndpoints"] = doc["spec"].pop("podMetricsEndpoints")


def _podmonitor_port_as_number(doc: Manifest) -> None:
    doc["spec"]["podMetricsEndpoints"][0]["port"] = 10027


def _rule_duration_in_words(doc: Manifest) -> None:
    alert = next(r for g in doc["spec"]["groups"] for r in g["rules"] if "alert" in r)
    alert["for"] = "5 minutes"


def _rule_without_expr(doc: Manifest) -> None:
    del doc["spec"]["groups"][0]["rules"][0]["expr"]


@pytest.mark.parametrize(
    ("kind", "damage", "path"),
    [
        ("Deployment", _deployment_port_as_text, "containerPort"),
        ("Deployment", _deployment_misspelt_key, "containers.1"),
        ("Service", _service_unknown_port_field, "spec.ports.0"),
        ("PodMonitor", _podmonitor_misspelt_endpoints, "spec"),
        ("PodMonitor", _podmonitor_port_as_number, "spec.podMetricsEndpoints.0.port"),
        ("PrometheusRule", _rule_duration_in_words, ".for"),
        ("PrometheusRule", _rule_without_expr, "spec.groups.0.rules.0"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_wrong_field_is_caught(kind: str, damage: Any, path: str) -> None:
    """The "can fail" proof: one deliberate mistake per case, each named by its path."""
    doc = find(kind)
    assert problems(doc, VERSIONS[-1]) == []
    damage(doc)
    found = problems(doc, VERSIONS[-1])
    assert found, f"{damage.__name__} passed validation"
    assert any(path in p for p in found), found
