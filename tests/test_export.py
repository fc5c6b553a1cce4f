"""Export: versions written aside and renamed, native artifacts with checksums."""

from __future__ import annotations

import json

import numpy as np
import pytest

from santander import artifact
from santander.training.candidates import FAMILIES, get_family
from santander.errors import ArtifactError, ExportError
from santander.loader import load_artifact
from santander.export import export_version
from santander.layout import existing_versions, models_dir


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_artifact_round_trip_gives_the_same_probabilities(family, wide_data, tmp_path):
    X, y = wide_data
    spec = get_family(family)
    model = spec.build(**spec.configurations(quick=True)[0]).fit(X, y)
    path = artifact.save(model, spec.artifact_format, tmp_path)
    assert path.name == artifact.FILENAMES[spec.artifact_format]
    loaded = load_artifact(path, spec.artifact_format)
    # 1e-4: Gaussian naive Bayes is served in float64 (santander/loader.py), while the
    # estimator fitted on float32 rows scores in float32, ~1e-5 off.
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-5,
                               atol=1e-4)


def test_corrupted_or_missing_artifact_is_refused(wide_data, tmp_path):
    X, y = wide_data
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y)
    path = artifact.save(model, "joblib", tmp_path)
    with open(path, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ArtifactError, match="corrupted"):
        load_artifact(path, "joblib")
    path.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(path, "joblib")


def test_versions_are_numbered_and_settings_complete(wide_data, tmp_path):
    X, y = wide_data
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y)
    repo = tmp_path / "deploy"
    first = export_version(model, "joblib", 0.3, {"family": "naive_bayes"}, repo)
    second = export_version(model, "joblib", 0.4, {"family": "naive_bayes"}, repo)
    assert (first.name, second.name) == ("1", "2")
    assert existing_versions(repo) == [1, 2]
    settings = json.loads((second / "model-settings.json").read_text())
    assert settings["name"] == "xgboost-model"
    assert settings["parameters"]["version"] == "2"
    assert settings["parameters"]["extra"]["threshold"] == 0.4
    assert settings["parameters"]["extra"]["model_card"]["version"] == "2"
    assert settings["max_batch_size"] >= 1 and settings["max_batch_time"] > 0
    assert settings["inputs"][0]["shape"] == [-1, 200]
    server = json.loads((repo / "settings.json").read_text())
    assert server["debug"] is False and "http_port" not in server
    artifact.verify(second / "model.joblib")


def test_failed_export_leaves_no_half_version(tmp_path):
    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    repo = tmp_path / "deploy"
    with pytest.raises(ExportError, match="cannot pickle this"):
        export_version(Unsaveable(), "joblib", 0.5, {}, repo)
    assert list(models_dir(repo).iterdir()) == []
    assert existing_versions(repo) == []


def test_exported_version_is_readable_by_other_users(wide_data, tmp_path):
    """A server running as another user (the deploy image's) must be able to read a version."""
    import os
    import stat
    X, y = wide_data
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y)
    previous = os.umask(0o022)
    try:
        version = export_version(model, "joblib", 0.3, {}, tmp_path / "deploy")
    finally:
        os.umask(previous)
    for entry in [version, *version.iterdir()]:
        mode = stat.S_IMODE(entry.stat().st_mode)
        assert mode & stat.S_IROTH, f"{entry.name} is {oct(mode)}"
        assert not entry.is_dir() or mode & stat.S_IXOTH, f"{entry.name} is {oct(mode)}"


def test_additive_artifact_is_plain_arrays(wide_data, tmp_path):
    """No pickle: numpy refuses object arrays when loading, and the file names no class."""
    X, y = wide_data
    spec = get_family("additive")
    model = spec.build(**spec.configurations(quick=True)[0]).fit(X, y)
    path = artifact.save(model, "additive", tmp_path)
    with np.load(path, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["grid", "intercept", "values"]
    assert b"santander" not in path.read_bytes()


def test_the_committed_server_settings_are_the_ones_export_writes(tmp_path):
    from pathlib import Path

    from santander.config import SERVER_SETTINGS
    from santander.export import ensure_server_settings
    committed = Path(__file__).resolve().parents[1] / "deploy" / "settings.json"
    assert json.loads(committed.read_text()) == SERVER_SETTINGS
    assert json.loads(ensure_server_settings(tmp_path).read_text()) == SERVER_SETTINGS
