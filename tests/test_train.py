"""The whole job on small data: a new version in the repository and a report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from santander.config import MODEL_NAME
from santander.loader import load_version
from santander.cli import main
from santander.training.evaluation import PLOTS
from santander.layout import read_model_settings
from santander.training.train import Pipeline, RunOptions, holdout_split, load_dataset


def test_quick_run_exports_a_version_and_a_report(trained_repository, small_parquet):
    root, outcome = trained_repository
    assert outcome.version == "1"
    assert outcome.version_dir == root / "deploy" / "models" / MODEL_NAME / "1"
    settings = read_model_settings(outcome.version_dir)
    extra = settings["parameters"]["extra"]
    card = extra["model_card"]
    report = json.loads((outcome.report_dir / "report.json").read_text())
    assert card["family"] == report["candidates"][0]["family"]
    assert card["threshold"] == extra["threshold"] == report["holdout"]["threshold"]
    assert card["data"]["fingerprint"].startswith("sha256:")
    assert {"scikit-learn", "xgboost", "mlserver"} <= set(card["packages"])
    for key in ("f1", "precision", "recall", "roc_auc", "pr_auc", "confusion_matrix",
                "classification_report"):
        assert key in report["holdout"]
    cm = report["holdout"]["confusion_matrix"]
    assert sum(cm.values()) == report["holdout"]["rows"]
    for plot in PLOTS:
        assert (outcome.report_dir / plot).stat().st_size > 1000
    assert len(report["candidates"]) >= 6
    for candidate in report["candidates"]:
        assert {"mean", "std"} <= set(candidate["f1"]) and "threshold" in candidate

    # The exported artifact reproduces the holdout scores in the report.
    split = holdout_split(load_dataset(small_parquet, quick=True))
    model, threshold = load_version(outcome.version_dir)
    assert threshold == extra["threshold"]
    proba = model.predict_proba(split.X_holdout)[:, 1]
    from sklearn.metrics import roc_auc_score, f1_score
    assert roc_auc_score(split.y_holdout, proba) == np.float64(report["holdout"]["roc_auc"])
    assert f1_score(split.y_holdout, proba >= threshold) == np.float64(report["holdout"]["f1"])


@pytest.mark.slow
def test_cli_make_data_then_train_prints_version_and_report(tmp_path, capsys):
    data = tmp_path / "train.csv"
    assert main(["make-data", "--rows", "2500", "--seed", "5", "--out", str(data)]) == 0
    assert "wrote 2500 rows" in capsys.readouterr().out
    code = main(["train", "--data", str(data), "--quick", "--no-progress",
                 "--repository", str(tmp_path / "deploy"), "--reports", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "version: 1 (" in out
    report = out.split("report: ")[1].splitlines()[0].strip()
    assert json.loads(open(report).read())["model_card"]["version"] == "1"
    assert "MLflow run: " in out


def test_the_pipeline_runs_each_step_once_in_order(small_parquet, tmp_path):
    """Export asks for the refit, which asks for the selection, which asks for the split; each
    result is kept, so a notebook calling the steps one by one runs each exactly once."""
    from santander.training.candidates import get_family
    pipeline = Pipeline(load_dataset(small_parquet, quick=True), [get_family("naive_bayes")],
                        RunOptions(quick=True, repository=tmp_path / "deploy",
                                   reports_dir=tmp_path / "reports", progress=False))
    outcome = pipeline.export()
    assert pipeline.split_ is not None and pipeline.refit_.candidate is pipeline.selection_.winner
    assert pipeline.select() is pipeline.selection_ and pipeline.export() is outcome
    assert outcome.version == "1" and len(pipeline.dataset.X) == 0   # rows live in the split
    assert {"split", "selection", "refit"} <= set(outcome.report["timings_seconds"])


def test_each_repository_keeps_its_own_reports(small_parquet, small_csv, tmp_path):
    """Version 1 of one repository does not overwrite version 1's report of another."""
    from santander.training.candidates import get_family
    from santander.training.train import run
    reports = {}
    for name, data in (("a", small_parquet), ("b", small_csv)):
        outcome = run(data, RunOptions(quick=True, repository=tmp_path / name / "deploy",
                                       progress=False), families=[get_family("naive_bayes")])
        assert outcome.report_dir == tmp_path / name / "deploy" / "reports" / MODEL_NAME / "1"
        reports[name] = json.loads((outcome.report_dir / "report.json").read_text())
    sources = {name: report["model_card"]["data"]["source"] for name, report in reports.items()}
    assert sources["a"].endswith(".parquet") and sources["b"].endswith(".csv")
