"""The deploy image: its pins agree with requirements.txt, and it builds, starts and answers;
from outside, only the operator can load and unload."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from santander.config import MODEL_NAME
from santander.layout import read_default
from santander.ops.launcher import free_port
from santander.training.data.io import load_features
from santander.v2_client import V2Client

from helpers import client, exported_model, two_versions

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "docker-local.sh"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_image_requirements_are_pinned_by_the_top_level_requirements():
    top = _pins(ROOT / "requirements.txt")
    serve = _pins(ROOT / "deploy" / "requirements-serve.txt")
    assert serve.pop("xgboost-cpu") == top["xgboost"]
    for name, version in serve.items():
        assert name in top, f"{name} is not pinned in requirements.txt"
        assert version in ("", top[name]), f"{name}=={version} disagrees with requirements.txt"


@pytest.mark.image
def test_deploy_image_runs_as_non_root_answers_and_only_the_operator_loads(trained_repository,
                                                                           small_csv, tmp_path):
    root, outcome = trained_repository
    image = f"santander-serve:test-{uuid.uuid4().hex[:8]}"
    name = f"santander-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "IMAGE": image, "PYTHON": sys.executable}
    ports = {"MLSERVER_HTTP_PORT": free_port(), "MLSERVER_GRPC_PORT": free_port(),
             "MLSERVER_METRICS_PORT": free_port(), "SANTANDER_INNER_HTTP_PORT": free_port(),
             "SANTANDER_INNER_GRPC_PORT": free_port(), "SANTANDER_INNER_METRICS_PORT": free_port()}
    build = subprocess.run(["bash", str(SCRIPT), "build", str(root / "deploy")],
                           env=env, capture_output=True, text=True,
                           timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        run = subprocess.run(["bash", str(SCRIPT), "run", name],
                             env={**env, **{k: str(v) for k, v in ports.items()},
                                  "SANTANDER_ADMIN_TOKEN": TOKEN},
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        http_url = f"http://127.0.0.1:{ports['MLSERVER_HTTP_PORT']}"

        X, _ = load_features(small_csv, rows=3)
        expected = exported_model(outcome.version_dir).predict_proba(X)[:, 1]
        rest = _ask(["--url", http_url, "--data", str(small_csv), "--rows", "3"])
        grpc = _ask(["--grpc", f"127.0.0.1:{ports['MLSERVER_GRPC_PORT']}", "--data",
                     str(small_csv), "--rows", "3"])
        np.testing.assert_allclose(rest, expected, atol=5e-5)   # printed with 4 decimals
        np.testing.assert_allclose(grpc, expected, atol=5e-5)

        shipped = _docker("exec", name, "ls", "/opt/app/santander").split()
        assert "serving" in shipped and "training" not in shipped and "ops" not in shipped
        user = _docker("exec", name, "id", "-u").strip()
        assert user != "0"
        assert _health(name) == "healthy"

        _only_the_operator_loads_and_unloads(name, ports, http_url, small_csv, expected)

        # A repository mounted over the baked one: the operator promotes through the front.
        _docker("rm", "-f", name)
        mounted = tmp_path / "mounted"
        X = two_versions(mounted)
        run = subprocess.run(["bash", str(SCRIPT), "run", name],
                             env={**env, **{k: str(v) for k, v in ports.items()},
                                  "SANTANDER_ADMIN_TOKEN": TOKEN,
                                  "DOCKER_RUN_ARGS": f"-v {mounted}:/srv/models:ro"},
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        _promote_through_the_front(mounted, http_url, X)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", image], capture_output=True)


TOKEN = "operator-" + uuid.uuid4().hex
# Unload, over gRPC: MLServer's two services that have it, and the request both take.
GRPC_UNLOADS = ["/inference.GRPCInferenceService/RepositoryModelUnload",
                "/inference.model_repository.ModelRepositoryService/RepositoryModelUnload"]
UNLOAD_REQUEST = b"\x12\x0d" + MODEL_NAME.encode()         # model_name (field 2)


def _only_the_operator_loads_and_unloads(name, ports, http_url, small_csv, expected):
    """The front refuses load and unload from outside, over REST and gRPC, and inference still
    answers; the operator's token, and a caller inside the container, still change what serves.
    """
    import grpc
    grpc_address = f"127.0.0.1:{ports['MLSERVER_GRPC_PORT']}"
    outsider = V2Client(http_url, token="")
    for verb in ("unload", "load"):
        status, answer = outsider.call("POST", f"/v2/repository/models/{MODEL_NAME}/{verb}")
        assert status == 403 and "only the operator" in answer["error"], (verb, status, answer)
    status, _ = V2Client(http_url, token="not-" + TOKEN).call(
        "POST", f"/v2/repository/models/{MODEL_NAME}/unload")
    assert status == 403
    with grpc.insecure_channel(grpc_address) as channel:
        for method in GRPC_UNLOADS:
            for metadata in (None, [("authorization", "Bearer not-" + TOKEN)]):
                with pytest.raises(grpc.RpcError) as refused:
                    channel.unary_unary(method)(UNLOAD_REQUEST, metadata=metadata, timeout=10)
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
    # Still serving, over both protocols; reading the repository's index is not refused.
    np.testing.assert_allclose(_ask(["--url", http_url, "--data", str(small_csv), "--rows", "3"]),
                               expected, atol=5e-5)
    np.testing.assert_allclose(_ask(["--grpc", grpc_address, "--data", str(small_csv),
                                     "--rows", "3"]), expected, atol=5e-5)
    assert outsider.loaded_versions(MODEL_NAME) == ["1"]
    # Only the front is reachable from other hosts: MLServer's own port answers on loopback
    # alone. (This machine runs containers on the host's network, so its loopback is the
    # container's; under `docker run -p` or in a pod, it is not reachable from outside at all.)
    address = _addresses_other_than_loopback()[0]
    assert _reachable(address, ports["MLSERVER_HTTP_PORT"])
    assert not _reachable(address, ports["SANTANDER_INNER_HTTP_PORT"])

    # The operator: with the token, over REST and over gRPC.
    operator = V2Client(http_url, token=TOKEN)
    operator.unload(MODEL_NAME)
    assert not outsider.ready(MODEL_NAME)
    operator.load(MODEL_NAME)
    assert outsider.ready(MODEL_NAME)
    with grpc.insecure_channel(grpc_address) as channel:
        channel.unary_unary(GRPC_UNLOADS[1])(UNLOAD_REQUEST, timeout=30,
                                             metadata=[("authorization", f"Bearer {TOKEN}")])
    assert not outsider.ready(MODEL_NAME)
    # ... and from inside the container, where MLServer answers on 127.0.0.1.
    inner = f"http://127.0.0.1:{ports['SANTANDER_INNER_HTTP_PORT']}"
    _docker("exec", name, "python", "-c",
            "import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method='POST'), "
            "timeout=60)", f"{inner}/v2/repository/models/{MODEL_NAME}/load")
    assert outsider.ready(MODEL_NAME)
    np.testing.assert_allclose(_ask(["--url", http_url, "--data", str(small_csv), "--rows", "3"]),
                               expected, atol=5e-5)


def _promote_through_the_front(repository: Path, http_url: str, X: np.ndarray) -> None:
    outsider = V2Client(http_url, token="")
    answered_by = lambda: outsider.infer(MODEL_NAME, None, X[:2])["model_version"]  # noqa: E731
    assert answered_by() == "1"
    command = [sys.executable, "-m", "santander", "promote", "2", "--repository",
               str(repository), "--url", http_url]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "SANTANDER_ADMIN_TOKEN": ""})
    assert refused.returncode != 0 and "SANTANDER_ADMIN_TOKEN" in refused.stderr
    assert answered_by() == "1" and read_default(repository).version == 1   # nothing changed
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SANTANDER_ADMIN_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    assert answered_by() == "2"


def _addresses_other_than_loopback() -> list[str]:
    """This machine's addresses other than loopback (IPv4)."""
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    found = [a for a in found if "." in a and not a.startswith("127.")]
    assert found, "the test needs an address other than loopback (hostname -I)"
    return found


def _reachable(address: str, port: int) -> bool:
    import socket
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False


def _ask(args: list[str]) -> list[float]:
    """Run request.py as users do; the probabilities it printed, one per row."""
    done = subprocess.run([sys.executable, str(ROOT / "request.py"), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [float(p) for p in re.findall(r"probability ([0-9.]+)", done.stdout)]


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def _health(name: str, timeout: float = 90.0) -> str:
    """The HEALTHCHECK's verdict, once it has one."""
    deadline = time.monotonic() + timeout
    status = "starting"
    while time.monotonic() < deadline:
        state = json.loads(_docker("inspect", "-f", "{{json .State.Health}}", name))
        status = state["Status"]
        if status != "starting":
            break
        time.sleep(2)
    return status
