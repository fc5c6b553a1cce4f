"""The model repository MLServer reads (santander.serving.repository), in-process: what it
offers, what it leaves out, and the line it logs for each version left out."""

from __future__ import annotations

import asyncio
import json
import logging

from santander.layout import SETTINGS_FILE, DefaultChoice, models_dir, write_default
from santander.serving.repository import VerifiedRepository


def offered(repository) -> list[str]:
    """The versions offered, in order; the default's entry (no version) as "default=N"."""
    return [s.parameters.version or f"default={s.parameters.extra['serves_version']}"
            for s in asyncio.run(VerifiedRepository(str(repository)).list())]


def test_retired_and_damaged_versions_are_left_out_each_with_a_log_line(three_versions, caplog):
    with caplog.at_level(logging.INFO, logger="mlserver"):
        assert offered(three_versions) == ["default=1", "1"]
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
    assert sorted(offered(tmp_path / "repo")) == ["1", "7", "default=1"]
    assert (models_dir(tmp_path / "repo") / "1").is_dir()


def test_the_default_is_offered_first_with_no_version_and_falls_back_when_not_served(
        three_versions, tmp_path, caplog):
    import shutil
    repo = shutil.copytree(three_versions, tmp_path / "repo")
    export = json.loads((models_dir(repo) / "1" / SETTINGS_FILE).read_text())
    assert offered(repo) == ["default=1", "1"]
    write_default(repo, DefaultChoice(2, [1]))              # chosen, then retired (3: damaged)
    with caplog.at_level(logging.INFO, logger="mlserver"):
        assert offered(repo) == ["default=1", "1"]
    assert "Default version 2 of model 'xgboost-model' is not served (retired or damaged): " \
        "version 1 is the default" in caplog.text
    (models_dir(repo) / "default.json").write_text("{not json")
    assert offered(repo) == ["default=1", "1"]
    assert "cannot read the default version" in caplog.text
    [entry, numbered] = asyncio.run(VerifiedRepository(str(repo)).list())
    assert entry.parameters.uri == numbered.parameters.uri == export["parameters"]["uri"]
    assert entry._source == numbered._source                      # the uri resolves alike
