"""Retraining: the next version from new data, alone or appended; bad input writes nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from santander.config import MODEL_NAME
from santander.cli import main
from santander.training.data.io import write_frame
from santander.training.candidates import FAMILIES
from santander.training.data.synthetic import generate
from santander.training.retrain import retrain
from santander.training.train import RunOptions
from santander.layout import list_versions


def quick_options(repository: Path, tmp_path: Path) -> RunOptions:
    return RunOptions(quick=True, repository=repository, reports_dir=tmp_path / "reports",
                      progress=False)


@pytest.fixture
def repository(trained_repository, tmp_path) -> Path:
    """A private copy of the quick-trained repository (version 1)."""
    root, _ = trained_repository
    return Path(shutil.copytree(root / "deploy", tmp_path / "deploy"))


@pytest.fixture(scope="module")
def new_parquet(tmp_path_factory) -> Path:
    return write_frame(generate(2_000, seed=23), tmp_path_factory.mktemp("new") / "new.parquet")


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_retrain_alone_refits_the_base_configuration_as_the_next_version(
        repository, new_parquet, tmp_path):
    before = _tree_digest(repository / "models" / MODEL_NAME / "1")
    outcome = retrain(new_parquet, options=quick_options(repository, tmp_path))
    assert outcome.version == "2"
    base, new = list_versions(repository)
    card = new.card
    assert card["family"] == base.card["family"]
    assert card["hyperparameters"] == base.card["hyperparameters"]
    assert card["retraining"]["base_version"] == 1 and card["retraining"]["reselect"] is False
    assert card["data"]["rows"] == 2_000
    assert [p["path"] for p in card["data"]["parts"]] == [str(new_parquet.resolve())]
    assert len(outcome.report["candidates"]) == 1          # one configuration, 5-fold CV
    assert 0.0 < card["threshold"] < 1.0
    assert _tree_digest(repository / "models" / MODEL_NAME / "1") == before


def test_retrain_append_trains_on_base_rows_plus_new_rows(repository, new_parquet, tmp_path):
    outcome = retrain(new_parquet, append=True, options=quick_options(repository, tmp_path))
    data = outcome.report["model_card"]["data"]
    base_rows = list_versions(repository)[0].card["data"]["rows"]
    assert data["rows"] == base_rows + 2_000
    assert len(data["parts"]) == 2
    assert outcome.report["model_card"]["retraining"]["base_saw_holdout_rows"] is True
    # The same rows again would count twice: refused, and nothing written.
    assert main(["retrain", "--data", str(new_parquet), "--append", "--quick", "--no-progress",
                 "--repository", str(repository), "--reports", str(tmp_path / "r")]) == 2
    assert [v.number for v in list_versions(repository)] == [1, 2]


@pytest.mark.slow
def test_retrain_reselect_reruns_the_whole_selection(repository, new_parquet, tmp_path):
    outcome = retrain(new_parquet, reselect=True, options=quick_options(repository, tmp_path))
    assert len(outcome.report["candidates"]) == len(FAMILIES)
    assert outcome.report["model_card"]["retraining"]["reselect"] is True


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    frame = generate(600, seed=5)
    garbage = folder / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    return {
        "missing feature": (write_frame(frame.drop(columns=["var_199"]), folder / "a.parquet"),
                            "var_199"),
        "extra feature": (write_frame(frame.assign(var_200=0.0), folder / "b.csv"), "var_200"),
        "unreadable": (garbage, "garbage.parquet"),
        "no such file": (folder / "absent.csv", "absent.csv"),
    }


@pytest.mark.parametrize("case", ["missing feature", "extra feature", "unreadable",
                                  "no such file"])
def test_bad_retrain_data_is_one_line_and_writes_nothing(case, repository, tmp_path, capsys):
    path, named = _bad_files(tmp_path)[case]
    reports = tmp_path / "reports"
    assert main(["retrain", "--data", str(path), "--quick", "--no-progress",
                 "--repository", str(repository), "--reports", str(reports)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "version 1" in err and named in err
    assert [v.number for v in list_versions(repository)] == [1]
    assert not reports.exists()


def test_unknown_base_version_names_the_versions_that_exist(repository, new_parquet, capsys):
    assert main(["retrain", "--data", str(new_parquet), "--version", "7",
                 "--repository", str(repository)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: model 'xgboost-model' has no version 7 (versions: 1)"


def test_append_refuses_base_data_that_changed_since(repository, tmp_path, capsys):
    first = write_frame(generate(1_500, seed=31), tmp_path / "first.parquet")
    retrain(first, options=quick_options(repository, tmp_path))   # version 2, on first
    write_frame(generate(1_500, seed=32), first)                   # first is rewritten
    later = write_frame(generate(1_500, seed=33), tmp_path / "later.parquet")
    assert main(["retrain", "--data", str(later), "--append", "--version", "2", "--quick",
                 "--no-progress", "--repository", str(repository),
                 "--reports", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    assert "has changed since" in err and "first.parquet" in err
    assert [v.number for v in list_versions(repository)] == [1, 2]


def test_versions_promote_retire_without_a_server(repository, capsys):
    url = "http://127.0.0.1:9"          # nothing listens there
    assert main(["retire", "1", "--repository", str(repository), "--url", url]) == 0
    assert "takes effect when it starts" in capsys.readouterr().out
    (version,) = list_versions(repository)
    assert version.retired and (version.folder / "model-settings.json").exists()
    assert main(["versions", "--repository", str(repository), "--url", url]) == 0
    out = capsys.readouterr().out
    assert "retired" in out and version.card["family"] in out
    assert main(["promote", "1", "--repository", str(repository), "--url", url]) == 0
    assert not list_versions(repository)[0].retired
    settings = json.loads((version.folder / "model-settings.json").read_text())
    assert settings["parameters"]["version"] == "1"


def test_a_damaged_base_version_stops_retraining_before_any_work(repository, new_parquet,
                                                                 tmp_path, capsys):
    (base,) = list_versions(repository)
    artifact_file = next(p for p in base.folder.iterdir() if p.name.startswith("model.")
                         and not p.name.endswith((".sha256", ".json")))
    with open(artifact_file, "ab") as handle:
        handle.write(b"damage")
    assert main(["retrain", "--data", str(new_parquet), "--quick", "--no-progress",
                 "--repository", str(repository), "--reports", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupted" in err
    assert [v.number for v in list_versions(repository)] == [1]
