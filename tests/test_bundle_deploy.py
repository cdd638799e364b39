"""The image, the compose stack and the Kubernetes manifests, checked without a container engine:
every file they reference exists, and the paths and ports one piece names are the ones the other
pieces use (the model writes where the sidecar reads, Prometheus scrapes where the sidecar
listens, Grafana loads what is mounted)."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from exporter.config import load_config
from exporter.validate import parse_listen_address
from tests.bundle import ROOT, alerts

K8S = ROOT / "deploy" / "kubernetes"
SIDECAR_UID = 10001
METRICS_PORT = 10027


def under(path: str, directory: str) -> bool:
    return PurePosixPath(directory) in PurePosixPath(path).parents


def sidecar_job_regex() -> str:
    """The job matcher of ModelExporterDown: scrape jobs must match it."""
    rule = next(a for a in alerts() if a["alert"] == "ModelExporterDown")
    m = re.search(r'job=~"([^"]+)"', rule["expr"])
    assert m
    return m.group(1)


# --- Dockerfile ----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def instructions(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def dockerignore_allows(path: str) -> bool:
    """.dockerignore semantics for the patterns used here: later patterns win, ! re-includes."""
    allowed = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            allowed = negate
    return allowed


def test_dockerfile_is_multi_stage_on_python_slim() -> None:
    froms = instructions("FROM")
    assert froms[0] == "python:3.11-slim AS build"
    assert froms[-1] == "python:3.11-slim"
    assert any("pip wheel" in r for r in instructions("RUN"))


def test_dockerfile_runs_as_fixed_non_root_uid() -> None:
    assert instructions("USER") == [f"{SIDECAR_UID}:{SIDECAR_UID}"]
    assert any(f"--uid {SIDECAR_UID}" in r for r in instructions("RUN"))


def test_dockerfile_entrypoint_cmd_port_and_healthcheck() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = instructions("ENTRYPOINT")
    assert yaml.safe_load(entrypoint) == ["model-exporter"]
    assert "model-exporter" in scripts
    (cmd,) = instructions("CMD")
    assert yaml.safe_load(cmd) == ["run", "--config", "/etc/model-exporter/exporter.yaml"]
    assert instructions("EXPOSE") == [str(METRICS_PORT)]
    (health,) = instructions("HEALTHCHECK")
    assert "urllib.request" in health
    assert f"127.0.0.1:{METRICS_PORT}/healthz" in health
    assert "curl" not in health


def test_dockerfile_copies_existing_files_the_build_context_keeps() -> None:
    copies = [shlex.split(args) for args in instructions("COPY")]
    for words in copies:
        if any(w.startswith("--from") for w in words):
            continue
        for source in words[:-1]:
            assert (ROOT / source).exists(), source
            assert dockerignore_allows(source), f"{source} is excluded by .dockerignore"
    # The default CMD's config is the one baked in, and it validates.
    assert ["config/exporter.yaml", "/etc/model-exporter/exporter.yaml"] in copies
    load_config(ROOT / "config" / "exporter.yaml")


def test_dockerignore_keeps_tests_and_tooling_out() -> None:
    for path in ("tests/conftest.py", ".venv", ".git", "grafana/dashboards", "bench"):
        assert not dockerignore_allows(path), path


# --- compose -------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def service(name: str) -> dict[str, Any]:
    svc: dict[str, Any] = compose()["services"][name]
    return svc


def mounts(name: str) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of a service's short-syntax volumes."""
    out = []
    for spec in service(name).get("volumes", []):
        parts = spec.split(":")
        out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def mount_source(name: str, target: str) -> Path:
    (source,) = [s for s, t, _ in mounts(name) if t == target]
    return ROOT / source


def flag(command: list[str], name: str) -> str:
    for i, word in enumerate(command):
        if word == name:
            return command[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{name} not in {command}")


def test_compose_has_the_whole_stack() -> None:
    assert set(compose()["services"]) == {
        "model",
        "sidecar",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_compose_bind_mounts_exist() -> None:
    for name in compose()["services"]:
        for source, _, _ in mounts(name):
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in compose()["volumes"], f"{name}: undeclared volume {source}"


def test_compose_model_writes_where_the_sidecar_reads() -> None:
    model_cmd = service("model")["command"]
    assert model_cmd[:2] == ["demo", "--writer-only"]
    log = flag(model_cmd, "--log")
    sidecar_cmd = service("sidecar")["command"]
    config = load_config(mount_source("sidecar", flag(sidecar_cmd, "--config")))
    (source,) = config.sources
    assert fnmatch.fnmatch(log, source.path)
    (model_volume,) = [(s, t) for s, t, _ in mounts("model") if under(log, t)]
    (sidecar_volume,) = [(s, t, ro) for s, t, ro in mounts("sidecar") if under(source.path, t)]
    assert sidecar_volume[0] == model_volume[0], "model and sidecar must share the log volume"
    assert sidecar_volume[1] == model_volume[1]
    assert sidecar_volume[2], "the sidecar only reads the log"
    assert source.start_at == "beginning", "the demo log is new: all of it is read"
    # Positions survive a sidecar restart: the positions file is on a writable volume.
    assert config.tail.positions_file is not None
    assert any(under(config.tail.positions_file, t) and not ro for _, t, ro in mounts("sidecar"))


def test_compose_prometheus_scrapes_the_sidecar_and_loads_the_rules() -> None:
    prom = service("prometheus")
    config_path = flag(prom["command"], "--config.file")
    host_config = mount_source("prometheus", config_path)
    config = yaml.safe_load(host_config.read_text())
    sidecar_config = load_config(
        mount_source("sidecar", flag(service("sidecar")["command"], "--config"))
    )
    port = parse_listen_address(sidecar_config.listen_address)[1]
    assert port == METRICS_PORT
    assert f"{METRICS_PORT}:{METRICS_PORT}" in service("sidecar")["ports"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    sidecar_jobs = [j for j in jobs if re.fullmatch(sidecar_job_regex(), j)]
    assert sidecar_jobs
    targets = [t for j in sidecar_jobs for sc in jobs[j]["static_configs"] for t in sc["targets"]]
    assert f"sidecar:{port}" in targets
    # rule_files resolve, inside the container, to the mounted rules directory.
    (pattern,) = config["rule_files"]
    in_container = PurePosixPath(config_path).parent / pattern
    (rules_source,) = [
        s for s, t, _ in mounts("prometheus") if PurePosixPath(t) == in_container.parent
    ]
    assert sorted((ROOT / rules_source).glob(in_container.name))
    (am_target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, am_port = am_target.split(":")
    assert host in compose()["services"]
    assert f"{am_port}:{am_port}" in service("alertmanager")["ports"]


def test_compose_alertmanager_uses_the_bundled_routing() -> None:
    am = service("alertmanager")
    assert mount_source("alertmanager", flag(am["command"], "--config.file")) == (
        ROOT / "config" / "alertmanager" / "alertmanager.yml"
    )


def test_compose_grafana_provisions_datasource_and_dashboards() -> None:
    datasources = mount_source("grafana", "/etc/grafana/provisioning/datasources")
    (ds,) = yaml.safe_load((datasources / "prometheus.yaml").read_text())["datasources"]
    m = re.fullmatch(r"http://([\w-]+):(\d+)", ds["url"])
    assert m
    assert m.group(1) in compose()["services"]
    assert f"{m.group(2)}:{m.group(2)}" in service(m.group(1))["ports"]
    providers = mount_source("grafana", "/etc/grafana/provisioning/dashboards")
    (provider,) = yaml.safe_load((providers / "model-exporter.yaml").read_text())["providers"]
    dashboards = mount_source("grafana", provider["options"]["path"])
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "model-exporter-fleet.json",
        "model-exporter-model.json",
        "model-exporter-sidecar.json",
    ]
    home = service("grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / PurePosixPath(home).relative_to(provider["options"]["path"])).exists()


# --- Kubernetes ----------------------------------------------------------------------------------


def k8s_objects() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            objects[doc["kind"]] = doc
    return objects


def containers() -> dict[str, dict[str, Any]]:
    spec = k8s_objects()["Deployment"]["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def volumes() -> dict[str, dict[str, Any]]:
    spec = k8s_objects()["Deployment"]["spec"]["template"]["spec"]
    return {v["name"]: v for v in spec["volumes"]}


def sidecar_config(tmp_path: Path) -> Any:
    data = k8s_objects()["ConfigMap"]["data"]["exporter.yaml"]
    path = tmp_path / "exporter.yaml"
    path.write_text(data)
    return load_config(path)


def projected_file(container: dict[str, Any], path: str) -> tuple[str, str]:
    """(ConfigMap name, key) that a file path inside the container comes from."""
    for mount in container["volumeMounts"]:
        if under(path, mount["mountPath"]):
            volume = volumes()[mount["name"]]
            relative = str(PurePosixPath(path).relative_to(mount["mountPath"]))
            for source in volume["projected"]["sources"]:
                for item in source["configMap"]["items"]:
                    if item["path"] == relative:
                        return source["configMap"]["name"], item["key"]
    raise AssertionError(f"{path} is not mounted from a ConfigMap")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk
    assert set(k8s_objects()) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodMonitor",
        "PrometheusRule",
    }


def test_model_and_sidecar_share_an_empty_dir_log(tmp_path: Path) -> None:
    model, sidecar = containers()["model"], containers()["model-exporter"]
    config = sidecar_config(tmp_path)
    (source,) = config.sources
    log = flag(model["args"], "--log")
    assert fnmatch.fnmatch(log, source.path)
    (model_mount,) = [m for m in model["volumeMounts"] if under(log, m["mountPath"])]
    (sidecar_mount,) = [m for m in sidecar["volumeMounts"] if under(source.path, m["mountPath"])]
    assert model_mount["name"] == sidecar_mount["name"]
    assert model_mount["mountPath"] == sidecar_mount["mountPath"]
    assert sidecar_mount["readOnly"] is True
    assert "emptyDir" in volumes()[model_mount["name"]]
    # The log is new with the Pod and the model container starts first: read from its first
    # line, or what the model wrote before the sidecar's first poll is skipped.
    assert source.start_at == "beginning"


def test_sidecar_config_and_reference_come_from_config_maps(tmp_path: Path) -> None:
    sidecar = containers()["model-exporter"]
    config_path = flag(sidecar["args"], "--config")
    assert projected_file(sidecar, config_path) == ("fraud-detector-exporter", "exporter.yaml")
    assert k8s_objects()["ConfigMap"]["metadata"]["name"] == "fraud-detector-exporter"
    config = sidecar_config(tmp_path)
    assert config.reference is not None
    assert projected_file(sidecar, config.reference) == (
        "fraud-detector-reference",
        "reference.json",
    )
    assert config.tail.positions_file is not None
    (state,) = [
        m for m in sidecar["volumeMounts"] if under(config.tail.positions_file, m["mountPath"])
    ]
    assert not state.get("readOnly", False)
    assert "emptyDir" in volumes()[state["name"]]


def test_sidecar_port_probes_and_user(tmp_path: Path) -> None:
    sidecar = containers()["model-exporter"]
    port = parse_listen_address(sidecar_config(tmp_path).listen_address)[1]
    (metrics,) = sidecar["ports"]
    assert (metrics["name"], metrics["containerPort"]) == ("metrics", port)
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    pod = k8s_objects()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsUser"] == SIDECAR_UID
    assert pod["runAsNonRoot"] is True
    assert pod["fsGroup"] == SIDECAR_UID


def test_pod_monitor_and_service_select_the_pods() -> None:
    objects = k8s_objects()
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    monitor = objects["PodMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {
        p["name"] for c in containers().values() for p in c.get("ports", [])
    }
    assert endpoint["path"] == "/metrics"
    # prometheus-operator names the job "<namespace>/<PodMonitor name>".
    assert re.fullmatch(sidecar_job_regex(), f"ml/{monitor['metadata']['name']}")
    service_selector = objects["Service"]["spec"]["selector"]
    assert service_selector.items() <= pod_labels.items()


@pytest.mark.parametrize("name", ["model", "model-exporter"])
def test_containers_are_locked_down(name: str) -> None:
    context = containers()[name]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
