"""Kubernetes manifests: rendered by kustomize, built-in kinds validated by kubernetes-validate,
KServe kinds by KServe's own CRD schemas, resources matched to the benchmarked memory."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import SHARED, require_shared

pytestmark = pytest.mark.system       # kubectl renders the manifests (`make system` installs it)
ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
CRDS = SHARED / "kserve-crds"
KUBERNETES_VERSION = "1.32"


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the manifests (kubectl kustomize)"
    done = subprocess.run([kubectl, "kustomize", str(K8S / overlay)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def crd_schema(kind: str, api_version: str) -> dict:
    require_shared(CRDS, "the KServe CRD schemas")
    group, version = api_version.split("/")
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind and crd["spec"]["group"] == group:
            for entry in crd["spec"]["versions"]:
                if entry["name"] == version:
                    return entry["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD schema for {kind} {api_version}")


def validate_kserve(doc: dict) -> None:
    jsonschema.Draft7Validator(crd_schema(doc["kind"], doc["apiVersion"])).validate(doc)


def test_plain_manifests_are_valid_kubernetes():
    docs = render("plain")
    assert sorted(d["kind"] for d in docs) == ["Deployment", "HorizontalPodAutoscaler",
                                               "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/santander-serve:1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/xgboost-model/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert "command" not in container       # the image's: the front and MLServer behind it
    assert_admin_token_from_a_secret(container)


def test_a_broken_manifest_is_caught():
    deployment = next(d for d in render("plain") if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    service = next(d for d in render("kserve") if d["kind"] == "InferenceService")
    broken = copy.deepcopy(service)
    broken["spec"]["predictor"]["minReplicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate_kserve(broken)


def test_kserve_manifests_match_the_crd_schemas():
    docs = render("kserve")
    assert sorted(d["kind"] for d in docs) == ["InferenceService", "ServingRuntime"]
    for doc in docs:
        validate_kserve(doc)
    runtime = next(d for d in docs if d["kind"] == "ServingRuntime")
    service = next(d for d in docs if d["kind"] == "InferenceService")
    assert service["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    assert service["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
    assert "v2" in runtime["spec"]["protocolVersions"]
    container = runtime["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/santander-serve:1"
    # The image's own command: MLServer behind the front that keeps load and unload to the
    # operator (deploy/front/), not MLServer alone on the pod's port.
    assert container["command"] == image_command()
    assert_admin_token_from_a_secret(container)


def image_command() -> list[str]:
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "deploy" / "Dockerfile").read_text(), re.M)
    return json.loads(cmd.group(1))


def assert_admin_token_from_a_secret(container: dict) -> None:
    env = {e["name"]: e for e in container["env"]}
    source = env["SANTANDER_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert source["name"] == "santander-admin" and source["optional"] is True


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi)", quantity).groups()
    return float(number) * (1024 if unit == "Gi" else 1)


def test_memory_requests_cover_the_benchmarked_server():
    text = (ROOT / "BENCHMARKS.md").read_text()
    measured = [float(m) for m in re.findall(
        r"\| this project's deployment[^\n]*?\| ([0-9.]+) MiB", text)]
    assert measured, "BENCHMARKS.md has no memory figure for this project's deployment"
    deployment = next(d for d in render("plain") if d["kind"] == "Deployment")
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    request = _mebibytes(resources["requests"]["memory"])
    assert max(measured) <= request <= 2 * max(measured)
    assert _mebibytes(resources["limits"]["memory"]) >= 1.5 * request


def _containers(overlay: str) -> list[dict]:
    containers = []
    for doc in render(overlay):
        spec = doc.get("spec", {})
        containers += spec.get("template", {}).get("spec", {}).get("containers", [])
        containers += spec.get("containers", []) if doc["kind"] == "ServingRuntime" else []
    return containers


@pytest.mark.parametrize("overlay", ["plain", "kserve"])
def test_every_replica_takes_the_logs_url_from_a_secret_when_one_exists(overlay):
    from santander.prediction_log.tables import LOG_URL_ENV
    [container] = _containers(overlay)
    [log_url] = [e for e in container["env"] if e["name"] == LOG_URL_ENV]
    # Optional: without the Secret the pod still starts, with the image's own SQLite default.
    assert log_url["valueFrom"]["secretKeyRef"] == {"name": "santander-log", "key": "url",
                                                   "optional": True}
