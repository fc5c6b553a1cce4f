"""The log's tables and where the log lives: one definition for the writer's child process
and the readers.

Through SQLAlchemy, so the same code runs on the embedded default, an SQLite file beside the
model repository (`<repository>/predictions.sqlite`, no server needed), and on Postgres by URL:

    SANTANDER_LOG_URL=postgresql+psycopg://user:password@host/db      Postgres
    SANTANDER_LOG_URL=off                                             no log

`predictions` holds one row per scored row. Its 200 features are one column, the float32
values in order (800 bytes, read back by `readers.features_array`): one insert parameter
instead of 200 keeps the writer's cost per row small, and readers decode a whole frame at once.
A shadow's rows (santander/serving/shadow.py) store an empty blob: the default's row of the same
request and row index holds their features, so shadowing does not write them twice. Readers
that need features (`with_features`) read the rows that have them.
The writer creates the tables when absent; readers never do.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import (BigInteger, Column, DateTime, Float, Index, Integer, LargeBinary,
                        MetaData, SmallInteger, String, Table, create_engine, event)
from sqlalchemy.engine import Engine


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
    # One index, the readers' way in: a version's rows, over time. An index on the random keys
    # (request ids, ID_codes) would cost the writer three times its other work per row;
    # readers join on those keys from the outcomes side, or in one pass.
    Index("ix_predictions_version_time", "model_name", "model_version", "logged_at"),
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


def connect(url: str, busy_seconds: float = WRITER_BUSY_SECONDS, create: bool = True) -> Engine:
    """An engine for the log at `url`, its tables created if absent (unless `create` is
    false, as for readers)."""
    # A database that does not answer at all costs the writer 5 s per try, not forever.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_seconds))
    if create:
        metadata.create_all(engine)
    return engine


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(unparsable URL)"
