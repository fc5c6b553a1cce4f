"""Reading the prediction log: what the commands (outcomes, live, monitor, compare) and the page
use. Readers never create tables, and they wait for a busy SQLite log rather than fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from santander.errors import DataError
from santander.layout import version_order
from santander.prediction_log.tables import (LOG_URL_ENV, READER_BUSY_SECONDS, connect, log_url,
                                             predictions, safe_url)
from santander.schema import FEATURES, N_FEATURES


def open_log(repository: str | Path) -> Engine:
    """The prediction log of `repository`: an error naming the problem when the log is off or
    nothing has been served from the repository yet."""
    url = log_url(repository)
    if url is None:
        raise DataError(f"the prediction log is off ({LOG_URL_ENV}=off)")
    nothing_yet = (f"nothing has been served from {repository} yet (or set {LOG_URL_ENV})")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise DataError(f"no prediction log at {url.removeprefix('sqlite:///')}: {nothing_yet}")
    # A command waits for a busy log: the server's writer holds SQLite's lock for a batch at a
    # time, longer when its process waits for the core.
    engine = connect(url, busy_seconds=READER_BUSY_SECONDS, create=False)
    if not inspect(engine).has_table(predictions.name):
        engine.dispose()
        raise DataError(f"the prediction log at {safe_url(url)} has no tables: {nothing_yet}")
    return engine


def with_features():
    """The condition for rows that hold their features (not a shadow's: tables.py)."""
    return func.length(predictions.c.features) > 0


def features_array(blobs: list[bytes]) -> np.ndarray:
    """(n, 200) float32 from the `features` column of n rows."""
    if not blobs:
        return np.empty((0, N_FEATURES), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), N_FEATURES)


def read_predictions(engine: Engine, model_name: str | None = None, version: str | None = None,
                     since=None):
    """Logged rows as a DataFrame, oldest first: every column but `features`, which comes as
    var_0..var_199. Filtered by model name, version and a start time (datetime) if given.
    The rows a version answered: a shadow's rows, which hold no features, are left out."""
    import pandas as pd
    query = select(predictions).where(with_features()).order_by(predictions.c.id)
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
