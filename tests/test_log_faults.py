"""The prediction log under faults, against a real server under load: a Postgres log down at
start and again mid-run, a full disk under the SQLite file, a database that answers slowly.

In each, every request is answered (none failed, none held for the database), the rows the log
could not write are counted on the metrics port, and writing resumes by itself once the
database is back."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy

from santander.config import MODEL_NAME
from santander.ops.launcher import running_server
from santander.prediction_log.tables import LOG_FILE, LOG_URL_ENV
from santander.training.data.synthetic import generate
from santander.v2_client import ClientError, V2Client
from bench.load import metrics_counter
from tests.helpers import log_counters as metrics_log_counters, log_settled
from tests.postgres import postgres_cluster

CALLERS = 6


def log_counters(server) -> dict[str, float]:
    return metrics_log_counters(server.metrics_url)


def load(server, rows: np.ndarray, seconds: float, tag: str) -> list[tuple[int, float]]:
    """CALLERS callers posting `rows` (ids tag-<caller>-<k>) for `seconds`: every answer's
    HTTP status and latency in seconds."""
    body = {"inputs": [{"name": "features", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}
    client = V2Client(server.http_url)
    answers: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds

    def caller(number: int) -> None:
        k = 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status, _ = client.call("POST", f"/v2/models/{MODEL_NAME}/infer",
                                        {**body, "id": f"{tag}-{number}-{k}"})
            except ClientError:
                status = 0
            answers.append((status, time.perf_counter() - start))
            k += 1

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def all_answered(answers: list[tuple[int, float]], within: float) -> None:
    """None failed, and none waited as long as the database's fault lasts."""
    assert answers and {status for status, _ in answers} == {200}
    assert max(latency for _, latency in answers) < within, "an answer waited for the log"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def settled(server) -> None:
    log_settled(server.metrics_url)


def logged_requests(url: str, tag: str) -> int:
    engine = sqlalchemy.create_engine(url)
    try:
        if not sqlalchemy.inspect(engine).has_table("predictions"):
            return 0                              # nothing written yet
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text(
                "SELECT COUNT(DISTINCT request_id) FROM predictions WHERE request_id LIKE :tag"),
                {"tag": f"{tag}-%"}).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def repository(trained_repository, tmp_path) -> Path:
    root, _ = trained_repository
    copy = tmp_path / "deploy"
    shutil.copytree(root / "deploy", copy, ignore=shutil.ignore_patterns(f"{LOG_FILE}*"))
    return copy


ROW = generate(1, seed=3).filter(like="var_").to_numpy(np.float32)


@pytest.mark.server
@pytest.mark.postgres
def test_a_postgres_log_down_at_start_and_mid_run_costs_rows_and_resumes_by_itself(
        repository, tmp_path, monkeypatch):
    with postgres_cluster(started=False) as database:
        monkeypatch.setenv(LOG_URL_ENV, database.url)
        with running_server(repository, tmp_path / "work") as server:
            answered = []

            def phase(tag: str) -> int:
                """Two seconds of load, all answered; how many requests it sent."""
                answers = load(server, ROW, 2.0, tag)
                all_answered(answers, within=5.0)
                answered.extend(answers)
                return len(answers)

            def resumes(tag: str) -> None:
                sent = phase(tag)
                wait_for(lambda: logged_requests(database.url, tag) == sent, 30,
                         f"writing did not resume once the database was up ({tag})")

            def costs_rows(tag: str) -> None:
                dropped = log_counters(server)["dropped"]
                phase(tag)
                wait_for(lambda: log_counters(server)["dropped"] > dropped, 15,
                         f"rows lost while the database was down were not counted ({tag})")

            costs_rows("down")              # unreachable from the start
            database.start()
            resumes("up")
            database.stop()                 # down mid-run, then up again
            costs_rows("mid-run")
            database.start()
            resumes("again")
            # Nothing lost but what is counted: every answered row written or dropped.
            wait_for(lambda: sum(log_counters(server).values()) == len(answered), 30,
                     "rows neither written nor counted as dropped")


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs (room for a full queue of rows once freed), unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"mounting a tmpfs needs root (CI runs as root): {done.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.server
def test_a_full_disk_under_the_sqlite_log_costs_rows_and_writing_resumes_once_freed(
        repository, tmp_path, small_disk, monkeypatch):
    url = f"sqlite:///{small_disk / 'predictions.sqlite'}"
    monkeypatch.setenv(LOG_URL_ENV, url)
    ballast = small_disk / "ballast"
    with running_server(repository, tmp_path / "work") as server:
        all_answered(load(server, ROW, 1.0, "before"), within=5.0)
        wait_for(lambda: log_counters(server)["written"] > 0, 15, "nothing written at first")
        # Fill the disk: what is left holds a few batches at most.
        free = shutil.disk_usage(small_disk).free
        ballast.write_bytes(b"\0" * max(0, free - 256 * 1024))
        rows = generate(50, seed=4).filter(like="var_").to_numpy(np.float32)
        all_answered(load(server, rows, 3.0, "full"), within=5.0)
        wait_for(lambda: log_counters(server)["dropped"] > 0, 15, "a full disk cost no row")
        ballast.unlink()
        settled(server)                 # what queued while the disk was full: written or dropped
        answers = load(server, ROW, 2.0, "freed")
        all_answered(answers, within=5.0)
        wait_for(lambda: logged_requests(url, "freed") == len(answers), 30,
                 "writing did not resume once the disk had room")


@pytest.mark.server
@pytest.mark.postgres
def test_a_slow_database_costs_rows_never_answers_and_writing_catches_up_when_it_is_fast(
        repository, tmp_path, monkeypatch):
    with postgres_cluster() as database:
        monkeypatch.setenv(LOG_URL_ENV, database.url)
        with running_server(repository, tmp_path / "work") as server:
            all_answered(load(server, ROW, 1.0, "warm"), within=5.0)
            wait_for(lambda: logged_requests(database.url, "warm") > 0, 15, "nothing logged")
            engine = sqlalchemy.create_engine(database.url)
            with engine.begin() as connection:     # every insert statement takes 2 s
                connection.execute(sqlalchemy.text(
                    "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(2); "
                    "RETURN NULL; END $$ LANGUAGE plpgsql"))
                connection.execute(sqlalchemy.text(
                    "CREATE TRIGGER slow BEFORE INSERT ON predictions FOR EACH STATEMENT "
                    "EXECUTE FUNCTION slow()"))
            rows = generate(100, seed=5).filter(like="var_").to_numpy(np.float32)
            # Enough rows to fill the queue while the first slow batch is being written.
            all_answered(load(server, rows, 6.0, "slow"), within=2.0)
            wait_for(lambda: log_counters(server)["dropped"] > 0, 15,
                     "a full queue dropped nothing")
            # What waits is on the metrics port, as the queue fills and as it drains.
            assert metrics_counter(server.metrics_url, "santander_log_queued_rows") > 0
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text("DROP TRIGGER slow ON predictions"))
            engine.dispose()
            answers = load(server, ROW, 2.0, "fast")
            all_answered(answers, within=5.0)
            wait_for(lambda: logged_requests(database.url, "fast") == len(answers), 90,
                     "writing did not catch up once the database was fast")
            wait_for(lambda: metrics_counter(server.metrics_url, "santander_log_queued_rows") == 0,
                     15, "rows still queued once everything was written")
