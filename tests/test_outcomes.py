"""Outcomes joined to the prediction log, live metrics per version, and retrain --from-log:
through the CLI, on a log the runtime wrote in-process."""

from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest
from mlserver.types import InferenceRequest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sqlalchemy import func, select

from santander.cli import main
from santander.config import MODEL_NAME
from santander.layout import existing_versions, models_dir
from santander.monitoring.outcomes import labelled_predictions
from santander.prediction_log.readers import read_predictions
from santander.prediction_log.tables import LOG_FILE, LOG_URL_ENV, connect, log_url, outcomes
from santander.training.data.synthetic import generate
from tests.test_runtime import loaded

SERVED = generate(900, seed=11)     # the traffic: ID_code, target, var_*


@pytest.fixture
def repository(trained_repository, tmp_path, monkeypatch):
    """A copy of the trained repository whose log holds SERVED, scored by version 1 in
    requests of 30 rows, each sent with its ID_codes; the even requests with an id too."""
    monkeypatch.delenv(LOG_URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)                 # retrain --from-log writes data/from-log/
    root, _ = trained_repository
    repo = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repo, ignore=shutil.ignore_patterns(f"{LOG_FILE}*"))
    model = loaded(models_dir(repo) / "1")
    X = SERVED.filter(like="var_").to_numpy(np.float32)
    codes = SERVED["ID_code"].tolist()
    for k, start in enumerate(range(0, len(X), 30)):
        rows = slice(start, start + 30)
        asyncio.run(model.predict(InferenceRequest.model_validate({
            "id": f"req-{k}" if k % 2 == 0 else None,
            "inputs": [{"name": "features", "shape": [30, 200], "datatype": "FP32",
                        "data": X[rows].ravel().tolist()},
                       {"name": "ID_code", "shape": [30], "datatype": "BYTES",
                        "data": codes[rows]}]})))
    assert model._log.flush()
    return repo


def outcome_count(repo) -> int:
    engine = connect(log_url(repo))
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(outcomes)).scalar()
    engine.dispose()
    return count


def test_outcomes_by_id_code_give_live_metrics_per_version(repository, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    SERVED[["ID_code", "target"]].iloc[:600].to_csv(labels, index=False)
    assert main(["outcomes", "--data", str(labels), "--repository", str(repository)]) == 0
    assert "recorded 600 outcome(s)" in capsys.readouterr().out
    engine = connect(log_url(repository))
    logged = read_predictions(engine, MODEL_NAME).iloc[:600]
    engine.dispose()
    y, p = SERVED["target"].to_numpy()[:600], logged["probability"].to_numpy()
    label = logged["label"].to_numpy()
    assert main(["live", "--repository", str(repository)]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[:3] == ["1", "600", f"{int(y.sum())}"]
    assert [float(v) for v in line[3:7]] == pytest.approx(
        [precision_score(y, label), recall_score(y, label), f1_score(y, label),
         roc_auc_score(y, p)], abs=5e-5)


def test_outcomes_by_request_id_and_row_and_a_later_label_replaces_one(repository, tmp_path):
    labels = tmp_path / "by_request.csv"
    # req-0 holds rows 0..29 of SERVED, req-2 rows 60..89.
    frame = SERVED.iloc[list(range(0, 30)) + list(range(60, 90))][["target"]].copy()
    frame.insert(0, "request_id", ["req-0"] * 30 + ["req-2"] * 30)
    frame.insert(1, "row_index", list(range(30)) * 2)
    frame.to_csv(labels, index=False)
    assert main(["outcomes", "--data", str(labels), "--repository", str(repository)]) == 0
    engine = connect(log_url(repository))
    joined = labelled_predictions(engine, MODEL_NAME)
    assert len(joined) == 60
    assert joined["target"].tolist() == frame["target"].tolist()
    # Labelled again, flipped: the new labels replace the old, nothing doubles.
    frame["target"] = 1 - frame["target"]
    frame.to_csv(labels, index=False)
    assert main(["outcomes", "--data", str(labels), "--repository", str(repository)]) == 0
    joined = labelled_predictions(engine, MODEL_NAME)
    engine.dispose()
    assert joined["target"].tolist() == frame["target"].tolist()
    assert outcome_count(repository) == 60


BAD_LABELS = {
    "no target": ("ID_code\ntrain_0\n", "no target column"),
    "target 2": ("ID_code,target\ntrain_0,1\ntrain_1,2\n", "row 2: target is 2"),
    "target missing": ("ID_code,target\ntrain_0,\n", "row 1: target is"),
    "no key": ("target\n1\n", "no key"),
    "unknown column": ("ID_code,target,score\ntrain_0,1,0.3\n", "unexpected column(s) score"),
    "duplicate key": ("ID_code,target\ntrain_0,1\ntrain_0,0\n", "row 2: train_0 is labelled twice"),
    "negative row": ("request_id,row_index,target\nreq-0,-1,1\n", "must not be negative"),
    "nothing matches": ("ID_code,target\nnobody,1\n", "none of its 1 labels matches"),
}


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_a_bad_labels_file_is_one_line_and_records_nothing(case, repository, tmp_path, capsys):
    text, message = BAD_LABELS[case]
    labels = tmp_path / "bad.csv"
    labels.write_text(text)
    assert main(["outcomes", "--data", str(labels), "--repository", str(repository)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert outcome_count(repository) == 0


def test_readers_say_so_when_there_is_no_log(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(LOG_URL_ENV, raising=False)
    assert main(["live", "--repository", str(tmp_path)]) == 2
    assert "no prediction log at" in capsys.readouterr().err
    monkeypatch.setenv(LOG_URL_ENV, "off")
    assert main(["live", "--repository", str(tmp_path)]) == 2
    assert "prediction log is off" in capsys.readouterr().err


def test_retrain_from_log_trains_the_next_version_on_the_labelled_rows(repository, tmp_path,
                                                                       capsys):
    labels = tmp_path / "labels.parquet"
    SERVED[["ID_code", "target"]].to_parquet(labels)
    assert main(["outcomes", "--data", str(labels), "--repository", str(repository)]) == 0
    assert main(["retrain", "--from-log", "--quick", "--repository", str(repository),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "900 labelled rows from the prediction log" in out
    assert existing_versions(repository) == [1, 2]
    written = sorted((tmp_path / "data" / "from-log").glob("labelled-*.parquet"))
    assert len(written) == 1
    import pandas as pd
    data = pd.read_parquet(written[0]).set_index("ID_code").loc[SERVED["ID_code"]]
    np.testing.assert_array_equal(data["target"], SERVED["target"])
    np.testing.assert_array_equal(data.filter(like="var_").to_numpy(),
                                  SERVED.filter(like="var_").to_numpy(np.float32))


@pytest.mark.slow
def test_outcomes_wait_for_a_busy_log_instead_of_failing(repository, tmp_path, capsys):
    import sqlite3
    import threading
    import time
    from santander.prediction_log.tables import WRITER_BUSY_SECONDS
    labels = tmp_path / "labels.csv"
    SERVED[["ID_code", "target"]].iloc[:30].to_csv(labels, index=False)
    # Another connection holds the log's write lock, as the server's writer does during a
    # batch, for longer than the writer itself would wait.
    holder = sqlite3.connect(repository / LOG_FILE, isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(WRITER_BUSY_SECONDS + 2, lambda: holder.execute("COMMIT"))
    release.start()
    start = time.monotonic()
    try:
        assert main(["outcomes", "--data", str(labels), "--repository", str(repository)]) == 0
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - start > WRITER_BUSY_SECONDS + 1     # it waited, then wrote
    assert "recorded 30 outcome(s)" in capsys.readouterr().out
    assert outcome_count(repository) == 30
