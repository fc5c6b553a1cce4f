"""The model repository MLServer reads (santander.serving.repository), in-process: what it
offers, what it leaves out, and the line it logs for each version left out."""

from __future__ import annotations

import asyncio
import json
import logging

from santander.layout import SETTINGS_FILE, models_dir
from santander.serving.repository import VerifiedRepository


def offered(repository) -> list[str]:
    return sorted(s.parameters.version
                  for s in asyncio.run(VerifiedRepository(str(repository)).list()))


def test_retired_and_damaged_versions_are_left_out_each_with_a_log_line(three_versions, caplog):
    with caplog.at_level(logging.INFO, logger="mlserver"):
        assert offered(three_versions) == ["1"]
    lines = [r.getMessage() for r in caplog.records]
    assert "Not loading version 2 of model 'xgboost-model': retired" in lines
    [damaged] = [line for line in lines if "version 3" in line]
    assert "sha256" in damaged or "corrupted" in damaged


def test_settings_that_are_not_ours_are_offered_unchecked(three_versions, tmp_path):
    """Another runtime's model in the same repository is MLServer's business, not ours."""
    import shutil
    shutil.copytree(three_versions, tmp_path / "repo")
    other = tmp_path / "repo" / "models" / "other-model"
    other.mkdir()
    (other / SETTINGS_FILE).write_text(json.dumps({
        "name": "other-model", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./missing.joblib", "version": "7"}}))
    assert offered(tmp_path / "repo") == ["1", "7"]
    assert (models_dir(tmp_path / "repo") / "1").is_dir()
