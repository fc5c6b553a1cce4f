"""What this project relies on in MLServer beyond its documented API, each named by a test that
fails if MLServer changes it. Each probe runs in a fresh interpreter, as the server does
(MLServer's gRPC protos then stay out of this process; tritonclient's share their names)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from santander.export import export_version
from santander.layout import RETIRED_MARKER, models_dir
from santander.training.candidates import get_family


def _probe(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """Three versions: 1 intact, 2 retired, 3 with a damaged artifact."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 200)).astype(np.float32)
    y = (X[:, 0] > 1).astype(int)
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y)
    root = tmp_path_factory.mktemp("repo")
    for _ in range(3):
        export_version(model, "joblib", 0.5, {"family": "naive_bayes"}, root)
    versions = models_dir(root)
    (versions / "2" / RETIRED_MARKER).write_text("retired\n")
    with open(versions / "3" / "model.joblib", "ab") as handle:
        handle.write(b"damage")
    return root


_BATCHING_PROBE = """
import asyncio, json, sys
from mlserver.batching import load_batching
from mlserver.registry import MultiModelRegistry
from mlserver.settings import ModelSettings

async def main():
    settings = ModelSettings.parse_file(sys.argv[1])
    settings.max_batch_size, settings.max_batch_time = 8, 0.01
    # The hooks MLServer's server gives its registry (mlserver/server.py).
    registry = MultiModelRegistry(on_model_load=[load_batching])
    model = await registry.load(settings)
    return {"wrapped_then_dropped": "predict" not in vars(model),
            "class_predict": getattr(model.predict, "__func__", None) is type(model).predict}

print(json.dumps(asyncio.run(main())))
"""


def test_mlserver_wraps_predict_for_batching_before_load_so_the_runtime_can_drop_the_wrapper(
        repository):
    """The runtime batches decoded rows itself and, in load(), drops the batching wrapper
    MLServer's `load_batching` hook set on the instance. That works only because MLServer runs
    its load hooks before `load()`; if it ever ran them after, requests would be batched twice
    (and this test fails)."""
    settings = models_dir(repository) / "1" / "model-settings.json"
    seen = _probe(_BATCHING_PROBE, str(settings))
    assert seen == {"wrapped_then_dropped": True, "class_predict": True}


_REPOSITORY_PROBE = """
import asyncio, json, sys
from santander.serving.repository import VerifiedRepository

async def main():
    offered = await VerifiedRepository(sys.argv[1]).list()
    return {"offered": sorted(s.parameters.version for s in offered)}

print(json.dumps(asyncio.run(main())))
"""


def test_the_repository_finds_each_version_folder_through_mlserver_public_helpers(repository):
    """Retired versions are found from the folder MLServer resolves the artifact `uri` in
    (`mlserver.utils.to_absolute_path`), not from a private attribute of the settings."""
    assert _probe(_REPOSITORY_PROBE, str(repository)) == {"offered": ["1"]}
