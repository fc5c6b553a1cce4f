"""The wall between training and serving, held.

In a fresh interpreter, as in the server: MLServer's own repository reads an exported version
of every family, the runtime loads it and answers a V2 request, and afterwards no module of
santander.training has been imported. Artifacts need no class of ours from the training side
(the per-feature tables not even scikit-learn or scipy). A fresh interpreter also keeps
MLServer's gRPC protos out of the test process (tritonclient's share their names).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from santander.export import export_version
from santander.training.candidates import FAMILIES, get_family

_SERVING_PROBE = """
import asyncio, json, sys
import numpy as np
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest
from santander.serving.repository import VerifiedRepository
from santander.serving.runtime import SantanderRuntime

async def answer():
    [settings] = await VerifiedRepository(sys.argv[1]).list()
    runtime = SantanderRuntime(settings)
    assert await runtime.load()
    rows = np.load(sys.argv[2])
    response = await runtime.predict(
        InferenceRequest(inputs=[NumpyCodec.encode_input("features", rows)]))
    return {o.name: o.data.root if hasattr(o.data, "root") else list(o.data)
            for o in response.outputs}

outputs = asyncio.run(answer())
outputs["modules"] = sorted(sys.modules)
print(json.dumps(outputs))
"""


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_every_family_is_served_without_any_training_module(family, wide_data, tmp_path):
    X, y = wide_data
    spec = get_family(family)
    model = spec.build(**spec.configurations(quick=True)[0]).fit(X, y)
    export_version(model, spec.artifact_format, 0.5, {"family": family}, tmp_path / "deploy")
    np.save(tmp_path / "rows.npy", X[:5])
    done = subprocess.run([sys.executable, "-c", _SERVING_PROBE, str(tmp_path / "deploy"),
                           str(tmp_path / "rows.npy")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    outputs = json.loads(done.stdout.strip().splitlines()[-1])
    expected = model.predict_proba(X[:5])[:, 1]
    np.testing.assert_allclose(outputs["probability"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outputs["label"], (expected >= 0.5).astype(int))

    modules = outputs["modules"]
    assert "santander.serving.runtime" in modules                  # the probe saw the imports
    assert [m for m in modules if m.startswith("santander.training")] == []
    assert [m for m in modules if m.startswith("santander.ops")] == []
    if spec.artifact_format == "additive":
        assert [m for m in modules if m.split(".")[0] in ("sklearn", "scipy", "joblib")] == []


def _modules_after(probe: str) -> list[str]:
    """Run `probe` in a fresh interpreter; the modules it had imported (its last line)."""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_monitoring_side_reads_the_log_without_the_serving_or_training_side():
    probe = ("import json, sys\n"
             "import santander.monitoring.outcomes, santander.monitoring.live\n"
             "import santander.monitoring.drift\n"
             "print(json.dumps(sorted(sys.modules)))")
    modules = _modules_after(probe)
    assert "santander.prediction_log" in modules
    assert [m for m in modules if m.startswith(("santander.training", "santander.serving",
                                                "santander.ops"))] == []


def test_the_app_works_without_the_serving_or_training_side(tmp_path):
    from santander.schema import FEATURES
    rows = tmp_path / "rows.csv"
    rows.write_text("ID_code," + ",".join(FEATURES) + "\nx," + ",".join(["0.5"] * 200) + "\n")
    probe = ("import json, sys\n"
             "from pathlib import Path\n"
             "import santander.app.launch, santander.app.browser\n"
             "from santander.app import data\n"
             f"rows = data.read_upload('rows.csv', Path({str(rows)!r}).read_bytes())\n"
             f"sources = data.Sources('http://127.0.0.1:9', Path({str(tmp_path)!r}))\n"
             "table, answered = data.versions_table(sources)\n"
             "assert len(rows) == 1 and table.empty and not answered\n"
             "assert data.latest_drift(sources) is None\n"
             "print(json.dumps(sorted(sys.modules)))")
    modules = _modules_after(probe)
    assert "santander.app.data" in modules and "santander.ops.versions" in modules
    assert [m for m in modules if m.startswith(("santander.training", "santander.serving"))] == []
