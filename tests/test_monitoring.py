"""Drift monitoring: each exported version keeps a reference sample; `santander monitor`
compares the logged traffic with it through Evidently, writes the report, the summary and the
gauges, and exits 1 on drift."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from mlserver.types import InferenceRequest
from scipy.stats import ks_2samp, wasserstein_distance

from santander.cli import main
from santander.layout import REFERENCE_FILE, models_dir
from santander.prediction_log.tables import LOG_FILE, LOG_URL_ENV
from santander.reference import read_reference
from santander.schema import FEATURES
from santander.training.data.synthetic import generate
from tests.test_runtime import loaded

pytestmark = pytest.mark.slow        # Evidently takes ~30 s per report (a plot per column)


def serve(version_dir, X: np.ndarray) -> None:
    model = loaded(version_dir)
    for start in range(0, len(X), 50):
        rows = X[start:start + 50]
        asyncio.run(model.predict(InferenceRequest.model_validate({"inputs": [{
            "name": "features", "shape": list(rows.shape), "datatype": "FP32",
            "data": rows.ravel().tolist()}]})))
    assert model._log.flush()


@pytest.fixture
def repository(trained_repository, tmp_path, monkeypatch):
    monkeypatch.delenv(LOG_URL_ENV, raising=False)
    root, _ = trained_repository
    repo = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repo, ignore=shutil.ignore_patterns(f"{LOG_FILE}*"))
    return repo


def test_export_keeps_a_checksummed_reference_sample_of_training_rows(repository,
                                                                      small_frame):
    version = models_dir(repository) / "1"
    reference = read_reference(version)
    assert list(reference.columns) == [*FEATURES, "probability"]
    # Rows of the training data, scored by the version itself.
    training = {tuple(row) for row in small_frame.filter(like="var_").to_numpy(np.float32)}
    assert all(tuple(row) in training for row in reference[list(FEATURES)].to_numpy()[:50])
    assert reference["probability"].between(0, 1).all() and reference["probability"].std() > 0
    with open(version / REFERENCE_FILE, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(Exception, match="corrupted"):
        read_reference(version)


def test_traffic_like_the_training_rows_is_no_drift_and_shifted_traffic_is(repository,
                                                                           tmp_path, capsys):
    version = models_dir(repository) / "1"
    reports = tmp_path / "reports"
    same = generate(600, seed=21).filter(like="var_").to_numpy(np.float32)
    serve(version, same)
    assert main(["monitor", "--repository", str(repository), "--reports", str(reports)]) == 0
    verdict = capsys.readouterr().out
    assert verdict.count("\n") == 1 and "version 1:" in verdict and "no drift" in verdict
    [summary_path] = (reports / "xgboost-model" / "1").glob("monitor-*.json")
    summary = json.loads(summary_path.read_text())
    assert summary["current_rows"] == 600 and summary["columns"] == 201
    assert summary["drifted_share"] < 0.2 and summary["drifted"] is False
    assert summary_path.with_suffix(".html").stat().st_size > 10_000
    check_against_scipy(summary, read_reference(version), same)

    # Later traffic with 150 features moved by 3 units: drift, exit 1 (for cron or CI).
    moved = generate(600, seed=22).filter(like="var_").to_numpy(np.float32).copy()
    moved[:, :150] += 3.0
    since = "2099-01-01T00:00"          # nothing yet: too few rows is one line, exit 2
    assert main(["monitor", "--repository", str(repository), "--since", since]) == 2
    assert "drift needs at least 100" in capsys.readouterr().err
    from datetime import datetime, timezone
    start = datetime.now(timezone.utc).isoformat()
    serve(version, moved)
    assert main(["monitor", "--repository", str(repository), "--reports", str(reports),
                 "--since", start]) == 1
    assert "DRIFT" in capsys.readouterr().out
    latest = max((reports / "xgboost-model" / "1").glob("monitor-*.json"))
    summary = json.loads(latest.read_text())
    assert summary["current_rows"] == 600 and summary["drifted"] is True
    assert set(summary["drifted_column_names"]) >= {f"var_{j}" for j in range(150)}
    gauges = (reports / "xgboost-model" / "1" / "drift.prom").read_text()
    assert f'santander_drifted_share{{model_version="1"}} {summary["drifted_share"]}' in gauges
    assert 'santander_drift_detected{model_version="1"} 1.0' in gauges
    assert "santander_positive_prediction_rate" in gauges


def check_against_scipy(summary: dict, reference, current: np.ndarray) -> None:
    """Evidently's per-column scores are scipy's own tests on the same numbers."""
    for j in (0, 7, 199):
        result = summary["per_column"][f"var_{j}"]
        ref, cur = reference[f"var_{j}"].to_numpy(np.float64), current[:, j].astype(np.float64)
        if "p_value" in result["method"]:
            expected = ks_2samp(ref, cur).pvalue
        else:
            expected = wasserstein_distance(ref, cur) / np.std(ref)
        assert result["score"] == pytest.approx(expected, rel=1e-3), result


def test_a_version_without_a_reference_sample_is_one_line(repository, capsys):
    version = models_dir(repository) / "1"
    serve(version, generate(120, seed=3).filter(like="var_").to_numpy(np.float32))
    (version / REFERENCE_FILE).unlink()
    assert main(["monitor", "--repository", str(repository)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no reference sample" in err


def test_evidently_still_needs_the_pandas_compatibility_shim():
    """santander/monitoring/drift.py gives pandas 3 back a name Evidently 0.7.23 imports.
    When this fails, Evidently no longer needs it: remove the shim."""
    done = subprocess.run([sys.executable, "-c", "import evidently.presets"],
                          capture_output=True, text=True,
                          env={"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "infer_dtype_from_object" in done.stderr
