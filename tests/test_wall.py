"""The wall between training and serving, held.

In a fresh interpreter, as in the server: MLServer's own repository reads an exported version
of every family, the runtime loads it and answers a V2 request, and afterwards no module of
santander.training has been imported. Artifacts need no class of ours from the training side
(the per-feature tables not even scikit-learn or scipy). A fresh interpreter also keeps
MLServer's gRPC protos out of the test process (tritonclient's share their names).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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
    [default, settings] = await VerifiedRepository(sys.argv[1]).list()
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


# What each room may import of the package (DESIGN.md's table), besides itself and the
# top-level modules. The CLI, at the top, may import everything.
MAY_IMPORT = {
    "santander.serving": ("santander.prediction_log.writer",),
    "santander.prediction_log": (),
    "santander.training": (),
    "santander.ops": (),
    "santander.monitoring": ("santander.prediction_log.readers", "santander.prediction_log.tables"),
    "santander.app": ("santander.ops", "santander.monitoring", "santander.prediction_log.readers",
                      "santander.prediction_log.tables"),
}
PACKAGE = Path(__file__).resolve().parents[1] / "santander"


def _imports(path: Path) -> set[str]:
    """The santander modules a file imports, anywhere in it (functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("santander.")}


def crossings(package: Path = PACKAGE) -> list[str]:
    """Every import of one room by another that MAY_IMPORT does not allow; the top level
    imports no room."""
    def room(name: str) -> str | None:            # None: a top-level module
        part = name.split(".")[1]
        return None if (package / f"{part}.py").is_file() else f"santander.{part}"

    found = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(("santander", *path.relative_to(package).with_suffix("").parts))
        if module in ("santander.cli", "santander.__main__", "santander.__init__"):
            continue
        for name in sorted(_imports(path)):
            if room(name) is None or room(name) == room(module):
                continue
            if room(module) is None or not name.startswith(MAY_IMPORT[room(module)] or ("-",)):
                found.append(f"{module} imports {name}")
    return found


def test_each_room_imports_only_what_the_design_allows_training_never_serving():
    assert crossings() == []


def test_the_wall_check_finds_training_importing_serving(tmp_path):
    import shutil
    copy = tmp_path / "santander"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "training" / "train.py", "a") as module:
        module.write("\n\ndef _later():\n    from santander.serving.runtime import x\n")
    with open(copy / "config.py", "a") as module:
        module.write("\nimport santander.ops.versions\n")
    assert crossings(copy) == ["santander.config imports santander.ops.versions",
                               "santander.training.train imports santander.serving.runtime",
                               "santander.training.train imports santander.serving.runtime.x"]
