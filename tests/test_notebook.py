"""The notebook runs top to bottom in quick mode and exports a version (papermill)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from santander.config import MODEL_NAME
from santander.ops.launcher import free_port

NOTEBOOK = Path(__file__).resolve().parents[1] / "ml_code.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert any("parameters" in c["metadata"].get("tags", []) for c in notebook["cells"])


@pytest.mark.notebook
def test_notebook_executes_in_quick_mode(small_csv, tmp_path):
    import papermill
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
        parameters={"data_path": str(small_csv), "quick": True,
                    "repository": str(tmp_path / "deploy"), "reports_dir": str(tmp_path / "reports"),
                    "server_url": f"http://127.0.0.1:{free_port()}"})
    executed = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "version 1 ->" in text
    assert (tmp_path / "deploy" / "models" / MODEL_NAME / "1" / "model-settings.json").is_file()
    images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 4
    # The last cell finds no server there, and says how to start one.
    assert "No server answers at" in text and "python -m santander serve" in text
