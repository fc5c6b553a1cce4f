"""The deploy image: its pins agree with requirements.txt, and it builds, starts and answers."""

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

from santander.training.data.io import load_features
from santander.ops.launcher import free_port

from helpers import client, exported_model

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
def test_deploy_image_builds_runs_as_non_root_and_answers_request_py(trained_repository,
                                                                    small_csv):
    root, outcome = trained_repository
    image = f"santander-serve:test-{uuid.uuid4().hex[:8]}"
    name = f"santander-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "IMAGE": image, "PYTHON": sys.executable}
    ports = {"MLSERVER_HTTP_PORT": free_port(), "MLSERVER_GRPC_PORT": free_port(),
             "MLSERVER_METRICS_PORT": free_port()}
    build = subprocess.run(["bash", str(SCRIPT), "build", str(root / "deploy")],
                           env=env, capture_output=True, text=True,
                           timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        run = subprocess.run(["bash", str(SCRIPT), "run", name],
                             env={**env, **{k: str(v) for k, v in ports.items()}},
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
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", image], capture_output=True)


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
