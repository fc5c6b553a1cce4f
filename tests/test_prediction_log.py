"""The prediction log: what the runtime records, in-process against SQLite and a real Postgres
server; what a slow or absent database costs (records, counted, never answers)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy
from mlserver.types import InferenceRequest
from prometheus_client import REGISTRY

from santander.config import LOG_SAMPLE_RATE_ENV, LOG_SAMPLE_RATE_SETTING, MODEL_NAME
from santander.errors import ArtifactError
from santander.export import export_version
from santander.layout import SETTINGS_FILE, repository_of
from santander.ops.launcher import free_port
from santander.prediction_log.child import LOG_PROCESS_NICENESS
from santander.prediction_log.readers import read_predictions
from santander.prediction_log.tables import LOG_FILE, LOG_URL_ENV, connect, log_url, predictions
from santander.prediction_log.writer import LogWriter, Scored, now
from santander.training.candidates import get_family
from tests.helpers import ROOT
from tests.postgres import postgres_server
from tests.test_runtime import loaded


@pytest.fixture(scope="module")
def version(wide_data, tmp_path_factory):
    X, y = wide_data
    family = get_family("histogram_nb")
    return export_version(family.build().fit(X, y), family.artifact_format, 0.3,
                          {"family": family.name}, tmp_path_factory.mktemp("repository"))


@pytest.fixture(autouse=True)
def default_log(monkeypatch):
    """Each test starts from the defaults: the SQLite file, every request logged."""
    monkeypatch.delenv(LOG_URL_ENV, raising=False)
    monkeypatch.delenv(LOG_SAMPLE_RATE_ENV, raising=False)


def request(X: np.ndarray, request_id: str | None = None,
            id_codes: list[str] | None = None) -> InferenceRequest:
    inputs = [{"name": "features", "shape": list(X.shape), "datatype": "FP32",
               "data": X.ravel().tolist()}]
    if id_codes is not None:
        inputs.append({"name": "ID_code", "shape": [len(id_codes)], "datatype": "BYTES",
                       "data": id_codes})
    return InferenceRequest.model_validate({"id": request_id, "inputs": inputs})


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("santander_log_dropped_rows_total",
                                     {"reason": reason}) or 0.0


def logged(url: str, request_id: str):
    engine = connect(url)
    try:
        frame = read_predictions(engine, MODEL_NAME)
    finally:
        engine.dispose()
    return frame[frame["request_id"] == request_id].reset_index(drop=True)


def check_logged_as_answered(model, url: str, X: np.ndarray, request_id: str) -> None:
    codes = [f"train_{i}" for i in range(len(X))]
    response = asyncio.run(model.predict(request(X, request_id, codes)))
    answered = {o.name: o.data.root for o in response.outputs}
    assert model._log.flush()
    rows = logged(url, request_id)
    assert len(rows) == len(X)
    assert rows["row_index"].tolist() == list(range(len(X)))
    assert rows["id_code"].tolist() == codes
    assert set(rows["model_version"]) == {"1"} and set(rows["threshold"]) == {0.3}
    np.testing.assert_array_equal(rows.filter(like="var_").to_numpy(), X.astype(np.float32))
    np.testing.assert_allclose(rows["probability"], answered["probability"], rtol=1e-6)
    assert rows["label"].tolist() == answered["label"]
    assert (rows["latency_ms"] > 0).all()
    assert rows["logged_at"].notna().all()


def test_every_scored_row_is_logged_as_answered_in_the_repository_sqlite_file(version,
                                                                            wide_data):
    model = loaded(version)
    url = log_url(repository_of(version))
    assert url.endswith(f"{repository_of(version) / LOG_FILE}")
    check_logged_as_answered(model, url, wide_data[0][:5], "sqlite-1")
    # A request without id or ID_codes is logged too.
    asyncio.run(model.predict(request(wide_data[0][5:7])))
    assert model._log.flush()
    engine = connect(url)
    anonymous = read_predictions(engine, MODEL_NAME, version="1")
    engine.dispose()
    anonymous = anonymous[anonymous["request_id"].isna()]
    assert len(anonymous) == 2 and anonymous["id_code"].isna().all()


@pytest.mark.postgres
def test_a_real_postgres_server_holds_the_same_log(version, wide_data, monkeypatch):
    with postgres_server() as url:
        monkeypatch.setenv(LOG_URL_ENV, url)
        model = loaded(version)
        check_logged_as_answered(model, url, wide_data[0][:4], "postgres-1")
        engine = sqlalchemy.create_engine(url)
        indexes = {i["name"] for i in sqlalchemy.inspect(engine).get_indexes("predictions")}
        engine.dispose()
        assert indexes == {i.name for i in predictions.indexes} == {"ix_predictions_version_time"}
        model._log.close()


def test_sampling_logs_a_share_of_requests_and_zero_turns_the_log_off(version, wide_data,
                                                                      monkeypatch):
    monkeypatch.setenv(LOG_SAMPLE_RATE_ENV, "0.5")
    model = loaded(version)
    for _ in range(400):
        asyncio.run(model.predict(request(wide_data[0][:1], "sampled")))
    assert model._log.flush()
    # 400 requests at 0.5: 200 expected, 10 in a standard deviation.
    assert 140 <= len(logged(log_url(repository_of(version)), "sampled")) <= 260
    monkeypatch.setenv(LOG_SAMPLE_RATE_ENV, "0")
    assert loaded(version)._log is None
    monkeypatch.setenv(LOG_URL_ENV, "off")
    monkeypatch.delenv(LOG_SAMPLE_RATE_ENV)
    assert loaded(version)._log is None


@pytest.mark.parametrize("rate", ["1.5", "half"])
def test_a_bad_sampling_rate_stops_the_version_loading_by_name(version, monkeypatch, rate):
    monkeypatch.setenv(LOG_SAMPLE_RATE_ENV, rate)
    with pytest.raises(ArtifactError, match=f"{LOG_SAMPLE_RATE_ENV}: '{rate}' is not a "
                                            "sampling rate"):
        loaded(version)


def version_with_rate(version: Path, folder: Path, rate) -> Path:
    """A copy of `version` whose settings carry its own log_sample_rate."""
    copy = folder / "models" / MODEL_NAME / "1"
    shutil.copytree(version, copy)
    settings = json.loads((copy / SETTINGS_FILE).read_text())
    settings["parameters"]["extra"][LOG_SAMPLE_RATE_SETTING] = rate
    (copy / SETTINGS_FILE).write_text(json.dumps(settings))
    return copy


def test_a_versions_own_sampling_rate_wins_over_the_environment(version, wide_data,
                                                                  monkeypatch, tmp_path):
    monkeypatch.setenv(LOG_SAMPLE_RATE_ENV, "1.0")
    assert loaded(version_with_rate(version, tmp_path / "off", 0))._log is None
    monkeypatch.setenv(LOG_SAMPLE_RATE_ENV, "0")
    whole = loaded(version_with_rate(version, tmp_path / "whole", 1.0))
    assert whole._log is not None and whole._sample_rate == 1.0
    asyncio.run(whole.predict(request(wide_data[0][:3], "canary")))
    assert whole._log.flush()
    assert len(logged(log_url(tmp_path / "whole"), "canary")) == 3


@pytest.mark.parametrize("rate", [2, "some", None, True])
def test_a_bad_sampling_rate_in_the_settings_stops_the_version_loading_by_name(
        version, tmp_path, rate):
    with pytest.raises(ArtifactError, match=f"{LOG_SAMPLE_RATE_SETTING} in the model "
                                            f"settings: {rate!r} is not a sampling rate"):
        loaded(version_with_rate(version, tmp_path, rate))


def test_an_unreachable_database_costs_records_never_answers(version, wide_data, monkeypatch,
                                                             caplog):
    url = f"postgresql+psycopg://santander:secret-pw@127.0.0.1:{free_port()}/nowhere"
    monkeypatch.setenv(LOG_URL_ENV, url)
    model = loaded(version)
    before = dropped("database")
    with caplog.at_level(logging.WARNING, logger="santander.prediction_log"):
        for k in range(3):
            response = asyncio.run(model.predict(request(wide_data[0][:2], f"lost-{k}")))
            assert [o.name for o in response.outputs] == ["probability", "label"]
        assert model._log.flush()
    assert dropped("database") - before == 6
    warnings = [r.getMessage() for r in caplog.records if "dropped rows" in r.getMessage()]
    assert len(warnings) == 1                  # one line, however many batches failed
    assert "database" in warnings[0] and "secret-pw" not in warnings[0]
    model._log.close()


def scored(n: int, request_id: str) -> Scored:
    return Scored(now(), request_id, None, MODEL_NAME, "1",
                  np.zeros((n, 200), dtype=np.float32), np.full(n, 0.25), 0.5, 1.0)


def test_rows_without_features_are_stored_empty_and_readers_of_features_skip_them(tmp_path):
    """A shadow's rows (no features: the default's row of the same request has them) beside
    the default's, in one batch: stored as empty blobs; the rows a version answered and the
    labelled rows written for training come with the default's features only."""
    import pandas as pd
    from santander.monitoring.outcomes import record_outcomes, write_labelled_rows
    engine_url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    X = np.random.default_rng(0).normal(size=(3, 200)).astype(np.float32)
    writer = LogWriter(engine_url)
    writer.submit(Scored(now(), "r1", None, MODEL_NAME, "1", X[:2], np.array([.1, .9]), .5, 1.))
    writer.submit(Scored(now(), "r1", None, MODEL_NAME, "2", None, np.array([.2, .8]), .5, 1.))
    writer.submit(Scored(now(), "r2", None, MODEL_NAME, "1", X[2:], np.array([.7]), .5, 1.))
    writer.submit(Scored(now(), "r2", None, MODEL_NAME, "2", None, np.array([.6]), .5, 1.))
    assert writer.flush()
    writer.close()
    engine = connect(engine_url)
    with engine.connect() as connection:
        stored = connection.execute(sqlalchemy.select(
            predictions.c.model_version, predictions.c.features, predictions.c.probability)
            .order_by(predictions.c.id)).all()
    assert [(v, len(f), p) for v, f, p in stored] == [
        ("1", 800, .1), ("1", 800, .9), ("2", 0, .2), ("2", 0, .8), ("1", 800, .7),
        ("2", 0, .6)]
    answered = read_predictions(engine, MODEL_NAME)
    assert answered["model_version"].tolist() == ["1", "1", "1"]
    np.testing.assert_array_equal(answered.filter(like="var_").to_numpy(np.float32), X)
    labels = pd.DataFrame({"request_id": ["r1", "r1", "r2"], "row_index": [0, 1, 0],
                           "id_code": [None] * 3, "target": [0, 1, 1]})
    record_outcomes(engine, labels, "labels")
    out, count = write_labelled_rows(engine, MODEL_NAME, tmp_path / "labelled.csv")
    written = pd.read_csv(out)
    assert count == 3 and written["target"].tolist() == [0, 1, 1]
    np.testing.assert_allclose(written.filter(like="var_").to_numpy(), X, atol=1e-4)
    engine.dispose()


def test_a_slow_database_never_blocks_the_caller_and_the_queue_is_bounded(tmp_path):
    url = f"sqlite:///{tmp_path / 'slow.sqlite'}"
    writer = LogWriter(url, max_queued_rows=50, batch_rows=10, flush_seconds=0.05)
    writer.submit(scored(1, "first"))          # creates the tables before the lock
    assert writer.flush()
    # Another process holds the write lock: the writer's next batch waits on it.
    blocker = sqlite3.connect(tmp_path / "slow.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    before = dropped("queue_full")
    submitted = threading.Event()

    def submit_all():
        for k in range(8):                     # 80 rows: 50 fit the bound, 30 are dropped
            writer.submit(scored(10, f"r{k}"))
        submitted.set()
    threading.Thread(target=submit_all).start()
    assert submitted.wait(2.0)                 # while the database is still locked
    assert writer.queued_rows == 50
    assert dropped("queue_full") - before == 30
    blocker.execute("ROLLBACK")
    blocker.close()
    assert writer.flush()
    writer.close()
    assert count_rows(url) == 1 + 50


def test_a_log_behind_catches_up_a_batch_at_a_time(tmp_path):
    # However much has queued, a transaction takes whole requests up to a batch's rows: what
    # the log child holds at once stays bounded (BENCHMARKS.md: 301 MiB without, 253 with).
    url = f"sqlite:///{tmp_path / 'behind.sqlite'}"
    writer = LogWriter(url, batch_rows=4, flush_seconds=0.05)
    writer.submit(scored(1, "first"))
    assert writer.flush()
    sent, write = [], writer._write
    writer._write = lambda batch: (sent.append(batch.rows), write(batch))[1]
    blocker = sqlite3.connect(tmp_path / "behind.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for k in range(5):
        writer.submit(scored(3, f"r{k}"))
    blocker.execute("ROLLBACK")
    blocker.close()
    assert writer.flush()
    writer.close()
    assert sum(sent) == 15 and count_rows(url) == 16
    assert max(sent) <= 4 + 3 - 1 and len(sent) >= 3


def count_rows(url: str) -> int:
    engine = connect(url)
    with engine.connect() as connection:
        count = connection.execute(sqlalchemy.select(sqlalchemy.func.count())
                                   .select_from(predictions)).scalar()
    engine.dispose()
    return count


def test_a_log_process_that_dies_costs_its_batch_and_the_next_starts_another(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    writer = LogWriter(url, batch_rows=1000, flush_seconds=0.05)
    writer.submit(scored(2, "before"))
    assert writer.flush()
    first = writer._child
    # The URL travels over the connection, not the command line, where `ps` shows it.
    assert url not in " ".join(first.args)
    first.kill()
    first.wait()
    before = dropped("database")
    writer.submit(scored(3, "lost"))
    assert writer.flush()
    assert dropped("database") - before == 3
    writer.submit(scored(4, "after"))
    assert writer.flush()
    assert writer._child is not None and writer._child.pid != first.pid
    child = writer._child
    writer.close()
    assert child.poll() == 0                   # its input closed, it ended on its own
    assert count_rows(url) == 2 + 4


def _post_rows(url: str, X: np.ndarray, request_id: str) -> int:
    from santander.v2_client import V2Client
    V2Client(url).infer(MODEL_NAME, None, X, request_id=request_id)
    return 200


def _wait_until_written(metrics_url: str, rows: int, timeout: float) -> None:
    """Poll the server's own counter until the log has committed `rows` rows."""
    import time
    from tests.helpers import log_counters
    deadline = time.monotonic() + timeout
    while (written := log_counters(metrics_url)["written"]) < rows:
        assert time.monotonic() < deadline, f"{written:.0f} of {rows} rows written"
        time.sleep(0.05)


@pytest.mark.server
def test_a_real_server_logs_what_clients_sent_and_a_sigkill_leaves_no_half_request(
        trained_repository, tmp_path):
    import shutil
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from santander.config import LOG_FLUSH_SECONDS, LOG_QUEUE_ROWS
    from santander.ops.launcher import running_server
    from santander.training.data.synthetic import generate
    from tests.helpers import ROOT, client
    root, _ = trained_repository
    repository = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repository,
                    ignore=shutil.ignore_patterns(f"{LOG_FILE}*"))
    url = log_url(repository)
    with running_server(repository, tmp_path / "work") as server:
        assert client.main(["--url", server.http_url, "--rows", "3", "--id", "rest-1"]) == 0
        done = subprocess.run([sys.executable, "request.py", "--grpc", server.grpc_address,
                               "--rows", "2", "--id", "grpc-1"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    # Stopped with SIGTERM: what was queued is written.
    codes = generate(3, seed=0)["ID_code"].tolist()
    assert logged(url, "rest-1")["id_code"].tolist() == codes
    assert logged(url, "grpc-1")["id_code"].tolist() == codes[:2]

    X = generate(3, seed=1).filter(like="var_").to_numpy()
    with running_server(repository, tmp_path / "work-2") as server:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda k: _post_rows(server.http_url, X, f"early-{k}"),
                                     range(100)))
            _wait_until_written(server.metrics_url, 300, timeout=LOG_FLUSH_SECONDS * 40)
            statuses += list(pool.map(lambda k: _post_rows(server.http_url, X, f"burst-{k}"),
                                      range(200)))
        server.process.kill()                  # SIGKILL, right after the last answer
        server.process.wait()
    assert statuses == [200] * 300
    engine = connect(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    frame = read_predictions(engine, MODEL_NAME)
    engine.dispose()
    early = frame[frame["request_id"].str.startswith("early-", na=False)]
    assert len(early) == 300                   # committed before the kill: all survive it
    burst = frame[frame["request_id"].str.startswith("burst-", na=False)]
    # Each request is in the log whole or not at all, and no more was lost than was queued.
    for request_id, rows in burst.groupby("request_id")["row_index"]:
        assert sorted(rows) == [0, 1, 2], request_id
    assert 600 - len(burst) <= LOG_QUEUE_ROWS
    print(f"after SIGKILL: {len(burst)} of 600 rows in the log")


def test_the_log_child_runs_at_one_fixed_priority_below_the_servers(tmp_path):
    writer = LogWriter(f"sqlite:///{tmp_path / 'nice.sqlite'}")
    try:
        writer.submit(scored(2, "priority"))
        assert writer.flush()
        pid = writer._child.pid
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        assert (os.getpriority(os.PRIO_PROCESS, pid)
                == os.getpriority(os.PRIO_PROCESS, 0) + LOG_PROCESS_NICENESS)
    finally:
        writer.close()
