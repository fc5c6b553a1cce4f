"""Ground truth for logged predictions: `santander outcomes --data labels.csv`.

A labels file has a `target` (0 or 1) per row and says which logged row it labels, by either
* `request_id` and `row_index` (the request's id and the row's place in it), or
* `ID_code` (as sent beside the features; request.py sends the file's ID_codes).
Feature columns (`var_*`) may be there too and are ignored, so the Kaggle `train.csv` itself
is a labels file. It is checked whole before anything is written: one-line errors, and
nothing recorded from a bad file. A label for a key that already has one replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import and_, delete, distinct, func, select, tuple_
from sqlalchemy.engine import Engine

from santander.errors import DataError
from santander.frames import read_frame
from santander.prediction_log.readers import with_features as with_features_condition
from santander.prediction_log.tables import outcomes, predictions
from santander.schema import FEATURE_INDEX, ID_COLUMN, TARGET_COLUMN

REQUEST_KEY = ("request_id", "row_index")
_CHUNK = 500          # keys per IN (...) list


@dataclass(frozen=True)
class Recorded:
    labels: int
    matched: int        # labels that match at least one logged row

    @property
    def unmatched(self) -> int:
        return self.labels - self.matched


def read_labels(path: str | Path) -> pd.DataFrame:
    """The file's labels as (request_id, row_index, id_code, target), checked."""
    frame = read_frame(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    allowed = {TARGET_COLUMN, ID_COLUMN, *REQUEST_KEY, *FEATURE_INDEX}
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise DataError(f"{path}: unexpected column(s) {', '.join(unknown[:5])}; a labels file "
                        f"has {TARGET_COLUMN} and either {ID_COLUMN} or request_id and row_index")
    if TARGET_COLUMN not in columns:
        raise DataError(f"{path}: no {TARGET_COLUMN} column")
    by_request = all(c in columns for c in REQUEST_KEY)
    if not by_request and ID_COLUMN not in columns:
        raise DataError(f"{path}: no key: give {ID_COLUMN}, or request_id and row_index")
    target = _whole_numbers(frame[TARGET_COLUMN], path, TARGET_COLUMN)
    if not np.isin(target, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(target, (0, 1)))[0])
        raise DataError(f"{path}: row {row + 1}: {TARGET_COLUMN} is {target[row]}; "
                        "expected 0 or 1")
    labels = pd.DataFrame({"target": target.astype(np.int64)})
    if by_request:
        labels["request_id"] = _strings(frame["request_id"], path, "request_id", 256)
        labels["row_index"] = _whole_numbers(frame["row_index"], path, "row_index")
        if (labels["row_index"] < 0).any():
            raise DataError(f"{path}: row_index must not be negative")
        key = list(REQUEST_KEY)
    else:
        labels["request_id"], labels["row_index"] = None, None
        key = ["id_code"]
    labels["id_code"] = (_strings(frame[ID_COLUMN], path, ID_COLUMN, 64)
                         if ID_COLUMN in columns else None)
    duplicated = labels.duplicated(subset=key)
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        shown = ", ".join(str(labels.at[row, k]) for k in key)
        raise DataError(f"{path}: row {row + 1}: {shown} is labelled twice")
    return labels[["request_id", "row_index", "id_code", "target"]]


def _whole_numbers(series: pd.Series, path, name: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: row {row + 1}: {name} is {series.iloc[row]!r}; expected a "
                        "whole number")
    return values.astype(np.int64)


def _strings(series: pd.Series, path, name: str, max_length: int) -> list[str]:
    values = series.astype("string")
    missing = values.isna() | (values.str.len() == 0)
    if missing.any():
        raise DataError(f"{path}: row {int(np.flatnonzero(missing)[0]) + 1}: {name} is empty")
    too_long = values.str.len() > max_length
    if too_long.any():
        raise DataError(f"{path}: row {int(np.flatnonzero(too_long)[0]) + 1}: {name} is longer "
                        f"than {max_length} characters")
    return values.tolist()


def _key_condition(table, labels: pd.DataFrame):
    """Rows of `table` with one of the labels' keys, as SQL conditions (chunked IN lists)."""
    if labels["request_id"].notna().all():
        pairs = list(zip(labels["request_id"], labels["row_index"].astype(int)))
        column = tuple_(table.c.request_id, table.c.row_index)
        return [column.in_(pairs[i:i + _CHUNK]) for i in range(0, len(pairs), _CHUNK)]
    codes = labels["id_code"].tolist()
    return [table.c.id_code.in_(codes[i:i + _CHUNK]) for i in range(0, len(codes), _CHUNK)]


def record_outcomes(engine: Engine, labels: pd.DataFrame, source: str) -> Recorded:
    """Record the labels in one transaction. Refused (nothing written) if none of them labels
    a logged row: that is the wrong file, or the wrong log."""
    by_request = labels["request_id"].notna().all()
    recorded_at = datetime.now(timezone.utc)
    rows = [{**row, "recorded_at": recorded_at,
             "row_index": None if row["row_index"] is None or pd.isna(row["row_index"])
             else int(row["row_index"])}
            for row in labels.astype(object).where(labels.notna(), None).to_dict("records")]
    with engine.begin() as connection:
        for condition in _key_condition(outcomes, labels):
            connection.execute(delete(outcomes).where(condition))
        before = connection.execute(select(func.max(outcomes.c.id))).scalar() or 0
        connection.execute(outcomes.insert(), rows)
        matched = connection.execute(_matched_labels(by_request, after_id=before)).scalar()
        if matched == 0:            # leaving the block by an error rolls the inserts back
            raise DataError(f"{source}: none of its {len(labels):,} labels matches a logged "
                            "prediction (by " + ("request_id and row_index" if by_request
                                                 else ID_COLUMN) + "); nothing recorded")
    return Recorded(labels=len(labels), matched=matched)


def _matched_labels(by_request: bool, after_id: int):
    """How many outcome rows newer than `after_id` label at least one logged row. Joined from
    the outcomes side: the log keeps no index on its keys (tables.py says why), so the database
    passes over the log once rather than look each label up."""
    key = (and_(predictions.c.request_id == outcomes.c.request_id,
                predictions.c.row_index == outcomes.c.row_index) if by_request
           else predictions.c.id_code == outcomes.c.id_code)
    return (select(func.count(distinct(outcomes.c.id)))
            .select_from(outcomes.join(predictions, key))
            .where(outcomes.c.id > after_id))


def labelled_predictions(engine: Engine, model_name: str, version: str | None = None,
                         with_features: bool = False) -> pd.DataFrame:
    """Logged rows that have an outcome: the prediction's columns and `target`. A row labelled
    both by its request and by its ID_code takes the later label. `with_features`: with the
    features column, and only the rows that hold it (a shadow's rows do not)."""
    wanted = [c for c in predictions.columns if with_features or c.name != "features"]
    # Two joins, not one with OR: each can use its index.
    by_request = and_(outcomes.c.request_id == predictions.c.request_id,
                      outcomes.c.row_index == predictions.c.row_index)
    by_code = and_(outcomes.c.request_id.is_(None),
                   outcomes.c.id_code == predictions.c.id_code)
    names = [c.name for c in wanted] + ["target", "recorded_at"]
    parts = []
    with engine.connect() as connection:
        for condition in (by_request, by_code):
            query = (select(*wanted, outcomes.c.target, outcomes.c.recorded_at)
                     .join(outcomes, condition)
                     .where(predictions.c.model_name == model_name))
            if version is not None:
                query = query.where(predictions.c.model_version == str(version))
            if with_features:
                query = query.where(with_features_condition())
            parts.append(pd.DataFrame(connection.execute(query).all(), columns=names))
    frame = pd.concat(parts, ignore_index=True) if any(len(p) for p in parts) else parts[0]
    frame = frame.astype({"target": np.int64, "label": np.int64, "probability": np.float64})
    return (frame.sort_values("recorded_at", kind="stable").drop_duplicates("id", keep="last")
            .sort_values("id").reset_index(drop=True))


def write_labelled_rows(engine: Engine, model_name: str, out: str | Path) -> tuple[Path, int]:
    """The labelled logged rows as training data (ID_code, target, var_0..var_199), written
    atomically to `out`: what `retrain --from-log` trains on. A row scored more than once
    (by several versions, or sent again) is one training row."""
    from santander.frames import write_frame
    from santander.prediction_log.readers import features_array
    from santander.schema import FEATURES
    frame = labelled_predictions(engine, model_name, with_features=True)
    if frame.empty:
        raise DataError("no logged prediction has an outcome yet: record some with "
                        "`santander outcomes --data labels.csv`")
    key = frame["id_code"].where(frame["id_code"].notna(),
                                 frame["request_id"].astype(str) + "#"
                                 + frame["row_index"].astype(str))
    frame = frame.assign(key=key).drop_duplicates("key", keep="last")
    data = pd.DataFrame(features_array(frame["features"].tolist()), columns=list(FEATURES))
    data.insert(0, TARGET_COLUMN, frame["target"].to_numpy())
    data.insert(0, ID_COLUMN, [code if code is not None and not pd.isna(code) else f"log-{i}"
                               for code, i in zip(frame["id_code"], frame["id"])])
    return write_frame(data, out), len(data)
