"""Reading and validating Santander files (the real Kaggle `train.csv`, or parquet)."""

from __future__ import annotations

import hashlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from santander.schema import FEATURES, ID_COLUMN, TARGET_COLUMN
from santander.errors import DataError
# Reading and writing files is shared with the monitoring side: it lives at the top.
from santander.frames import (SUFFIXES, _numeric, _suffix, check_feature_columns,  # noqa: F401
                              load_features, read_frame, write_frame)


@dataclass(frozen=True)
class Dataset:
    """Validated training data: features as float32 (what the models see), target as int."""

    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    fingerprint: str
    source: str
    # Where the rows came from, one entry per file: {path, quick, rows, fingerprint}. Enough
    # to read the same rows again (retraining appends to a version's data this way).
    parts: list[dict] = field(default_factory=list)

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    def without_features(self) -> "Dataset":
        """The same description with no feature rows: once split, the rows live in the
        split, and a second copy of 200,000 x 200 floats is 160 MB held for nothing."""
        return dataclasses.replace(self, X=self.X[:0])

    def provenance(self, quick: bool) -> list[dict]:
        return self.parts or [{"path": str(Path(self.source).resolve()), "quick": quick,
                               "rows": int(len(self.y)), "fingerprint": self.fingerprint}]


def fingerprint(X: np.ndarray, y: np.ndarray | None = None) -> str:
    """sha256 of the values a model is trained on (row order included)."""
    digest = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    if y is not None:
        digest.update(np.ascontiguousarray(y, dtype=np.int8).tobytes())
    return "sha256:" + digest.hexdigest()


def load_training_data(path: str | Path, min_positives: int = 10) -> Dataset:
    """Read and strictly validate a training file; raise DataError with one line on any problem."""
    path = Path(path)
    frame = read_frame(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    check_feature_columns(columns, path, allowed={ID_COLUMN, TARGET_COLUMN, *FEATURES})
    for required in (ID_COLUMN, TARGET_COLUMN):
        if required not in columns:
            raise DataError(f"{path}: missing column {required!r}")

    ids = frame[ID_COLUMN].astype(str).to_numpy()
    duplicated = pd.Series(ids).duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise DataError(f"{path}: duplicate ID_code {ids[row]!r} (row {row + 1})")

    target = _numeric(frame, [TARGET_COLUMN], path)[:, 0]
    bad_target = ~np.isin(target, (0.0, 1.0))
    if bad_target.any():
        row = int(np.flatnonzero(bad_target)[0])
        raise DataError(f"{path}: target must be 0 or 1; row {row + 1} has {target[row]:g}")
    y = target.astype(np.int64)

    X = _numeric(frame, list(FEATURES), path)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if min(positives, negatives) < min_positives:
        raise DataError(
            f"{path}: too few rows of one class for a stratified holdout and 5 folds: "
            f"{positives} positive and {negatives} negative; need at least {min_positives} of each")
    X32 = X.astype(np.float32)
    return Dataset(X=X32, y=y, ids=ids, fingerprint=fingerprint(X32, y), source=str(path))
