"""The prediction log's tables and where the log lives: one definition for the writer
(santander/serving/log_writer.py) and the readers (santander/monitoring/).

Through SQLAlchemy, so the same code runs on the embedded default, an SQLite file beside the
model repository (`<repository>/predictions.sqlite`, no server needed), and on Postgres by URL:

    SANTANDER_LOG_URL=postgresql+psycopg://user:password@host/db      Postgres
    SANTANDER_LOG_URL=off                                             no log

`predictions` holds one row per scored row. Its 200 features are one column, the float32
values in order (800 bytes, read back by `features_array`): one insert parameter instead
of 200 keeps the writer's cost per row small, and readers decode a whole frame at once.
Tables and indexes are created when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sqlalchemy import (BigInteger, Column, DateTime, Float, Index, Integer, LargeBinary,
                        MetaData, SmallInteger, String, Table, create_engine, event, select)
from sqlalchemy.engine import Engine

from santander.schema import FEATURES, N_FEATURES

LOG_URL_ENV = "SANTANDER_LOG_URL"
LOG_OFF = "off"
LOG_FILE = "predictions.sqlite"

metadata = MetaData()
# SQLite numbers rows itself only for an INTEGER primary key.
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

predictions = Table(
    "predictions", metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("logged_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(256)),            # as the caller sent it (codec caps it at 256)
    Column("row_index", Integer, nullable=False),  # the row's place in its request
    Column("id_code", String(64)),                # the row's ID_code, when the request named it
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("features", LargeBinary, nullable=False),
    Column("probability", Float, nullable=False),
    Column("label", SmallInteger, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),   # the request's time in the runtime
    Index("ix_predictions_logged_at", "logged_at"),
    Index("ix_predictions_version_time", "model_name", "model_version", "logged_at"),
    Index("ix_predictions_request", "request_id", "row_index"),
    Index("ix_predictions_id_code", "id_code"),
)

# Ground truth, as `santander outcomes` records it: one label per logged row, keyed by the
# request (id and row) or by the row's ID_code. Joined to predictions when read, so labels
# may arrive before or after the rows they label, and a later label for a key replaces it.
outcomes = Table(
    "outcomes", metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(256)),
    Column("row_index", Integer),
    Column("id_code", String(64)),
    Column("target", SmallInteger, nullable=False),
    Index("ix_outcomes_request", "request_id", "row_index"),
    Index("ix_outcomes_id_code", "id_code"),
)


def log_url(repository: str | Path) -> str | None:
    """The log's SQLAlchemy URL for a model repository: SANTANDER_LOG_URL if set (None when
    it says off), else the SQLite file inside the repository."""
    configured = os.environ.get(LOG_URL_ENV, "").strip()
    if configured:
        return None if configured.lower() == LOG_OFF else configured
    return f"sqlite:///{(Path(repository) / LOG_FILE).resolve()}"


def open_log(repository: str | Path) -> Engine:
    """The prediction log of `repository`, for reading: an error naming the problem when the
    log is off or nothing has been served from the repository yet."""
    from santander.errors import DataError
    url = log_url(repository)
    if url is None:
        raise DataError(f"the prediction log is off ({LOG_URL_ENV}=off)")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise DataError(f"no prediction log at {url.removeprefix('sqlite:///')}: nothing has "
                        f"been served from {repository} yet (or set {LOG_URL_ENV})")
    # A command (outcomes, monitor) waits for a busy log: the server's writer holds SQLite's
    # lock for a batch at a time, longer when its process waits for the core.
    return connect(url, busy_seconds=READER_BUSY_SECONDS)


# How long a connection waits for another's lock on an SQLite log before failing: the server's
# writer gives up soon (it drops the batch, counted); a user's command waits much longer.
WRITER_BUSY_SECONDS = 5
READER_BUSY_SECONDS = 120


def _sqlite_pragmas(busy_seconds: float):
    # WAL: readers (monitor, app) never block the server's writer, nor it them; writers wait
    # for each other's lock up to busy_seconds. synchronous=NORMAL, as SQLite advises for
    # WAL: a killed process loses nothing committed; only a power cut can take back the last
    # commits, and it never corrupts the file.
    def pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
    return pragmas


def connect(url: str, busy_seconds: float = WRITER_BUSY_SECONDS) -> Engine:
    """An engine for the log at `url`, its tables created if absent."""
    # A database that does not answer at all costs the writer 5 s per try, not forever.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_seconds))
    metadata.create_all(engine)
    return engine


def features_array(blobs: list[bytes]) -> np.ndarray:
    """(n, 200) float32 from the `features` column of n rows."""
    if not blobs:
        return np.empty((0, N_FEATURES), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), N_FEATURES)


def read_predictions(engine: Engine, model_name: str | None = None, version: str | None = None,
                     since=None):
    """Logged rows as a DataFrame, oldest first: every column but `features`, which comes as
    var_0..var_199. Filtered by model name, version and a start time (datetime) if given."""
    import pandas as pd
    query = select(predictions).order_by(predictions.c.id)
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    if version is not None:
        query = query.where(predictions.c.model_version == str(version))
    if since is not None:
        query = query.where(predictions.c.logged_at >= since)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    columns = [c.name for c in predictions.columns if c.name != "features"]
    frame = pd.DataFrame([[row[c] for c in columns] for row in rows], columns=columns)
    features = pd.DataFrame(features_array([row["features"] for row in rows]),
                            columns=list(FEATURES))
    return pd.concat([frame, features], axis=1)


def logged_versions(engine: Engine, model_name: str) -> list[str]:
    """The versions of `model_name` with logged rows, oldest first."""
    query = (select(predictions.c.model_version).distinct()
             .where(predictions.c.model_name == model_name))
    with engine.connect() as connection:
        versions = [row[0] for row in connection.execute(query)]
    return sorted(versions, key=version_order)


def version_order(version: str) -> tuple:
    """MLServer's order of versions: numbers as numbers ("10" after "9"), then any text."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)
