"""MLflow tracking: a training run can be read back; a tracking failure never fails training."""

from __future__ import annotations

import pytest

from santander.training.tracking import TrackingWarning
from santander.training.train import RunOptions, run


def test_training_run_is_tracked_and_reads_back(trained_repository, tracking_store):
    from mlflow import MlflowClient
    _, outcome = trained_repository
    assert outcome.tracking_run
    client = MlflowClient(tracking_store)
    logged = client.get_run(outcome.tracking_run)
    card = outcome.report["model_card"]
    params, metrics = logged.data.params, logged.data.metrics
    assert params["winner.family"] == card["family"]
    assert params["data.fingerprint"] == card["data"]["fingerprint"]
    assert params["version_dir"] == str(outcome.version_dir.resolve())
    assert metrics["holdout.f1"] == pytest.approx(outcome.report["holdout"]["f1"])
    assert logged.data.tags["santander.version"] == outcome.version
    report = {a.path for a in client.list_artifacts(outcome.tracking_run, "report")}
    assert {"report/report.json", "report/roc.png", "report/precision_recall.png"} <= report
    assert [a.path for a in client.list_artifacts(outcome.tracking_run, "model")] == \
        ["model/model-settings.json"]
    children = client.search_runs(
        [logged.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{outcome.tracking_run}'")
    assert {c.data.params["family"] for c in children} == \
        {c["family"] for c in outcome.report["candidates"]}
    one = children[0]
    folds = client.get_metric_history(one.info.run_id, "fold.f1")
    assert sorted(m.step for m in folds) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_tracking_failure_warns_and_the_version_is_still_exported(small_parquet, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////proc/no-such-dir/mlflow.db")
    with pytest.warns(TrackingWarning, match="training run completed"):
        outcome = run(small_parquet, RunOptions(quick=True, repository=tmp_path / "deploy",
                                                reports_dir=tmp_path / "reports", progress=False))
    assert outcome.tracking_run is None
    assert (outcome.version_dir / "model-settings.json").exists()


@pytest.mark.server
def test_ui_command_serves_the_mlflow_ui_on_localhost(tmp_path):
    import subprocess
    import sys
    import time
    import urllib.request
    from santander.ops.launcher import free_port, stop_process
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "santander", "ui", "--port", str(port)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read().decode(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the MLflow UI did not start"
                time.sleep(0.5)
    finally:
        stop_process(process, grace=30)
