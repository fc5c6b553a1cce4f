"""Reading and writing tables as CSV or parquet: one-line errors on read, atomic writes.

Shared by training data (santander/training/data/io.py), outcome labels and the rows a
retrain takes from the prediction log (santander/monitoring/), and the rows a client sends
(`load_features`: request.py, the app).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from santander.atomic import staged_file
from santander.errors import DataError
from santander.schema import FEATURES, ID_COLUMN, TARGET_COLUMN

SUFFIXES = (".csv", ".parquet")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet")
    return suffix


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or parquet file into a frame; any read failure is one DataError line."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype={ID_COLUMN: str}, usecols=columns, low_memory=False)
        else:
            frame = pd.read_parquet(path, columns=columns)
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read: {first_line}") from exc
    if frame.empty:
        raise DataError(f"{path}: file has no data rows")
    return frame


def write_frame(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write CSV or parquet atomically: into a temporary file beside `out`, then rename."""
    out = Path(out)
    suffix = _suffix(out)
    with staged_file(out) as staging:
        if suffix == ".csv":
            frame.to_csv(staging, index=False, float_format="%.4f")
        else:
            frame.to_parquet(staging, index=False)
    return out


def _numeric(frame: pd.DataFrame, columns: list[str], path: Path) -> np.ndarray:
    """The named columns as float64, or a DataError naming the first bad cell."""
    block = frame[columns]
    numeric = {}
    for column in columns:
        series = block[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            numeric[column] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        converted = pd.to_numeric(series.astype(object), errors="coerce")
        bad = (converted.isna() & series.notna()).to_numpy()
        if pd.api.types.is_bool_dtype(series):
            bad[:] = True
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: column {column!r} row {row + 1}: "
                            f"non-numeric value {series.iloc[row]!r}")
        numeric[column] = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.column_stack([numeric[c] for c in columns])
    finite = np.isfinite(values)
    if not finite.all():
        row, col = map(int, np.argwhere(~finite)[0])
        what = "missing value" if np.isnan(values[row, col]) else f"non-finite value {values[row, col]}"
        raise DataError(f"{path}: column {columns[col]!r} row {row + 1}: {what}")
    return values


def check_feature_columns(columns: list[str], path: Path | str, allowed: set[str]) -> None:
    present = set(columns)
    missing = [f for f in FEATURES if f not in present]
    extra = [c for c in columns if c not in allowed]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{path}: missing {len(missing)} feature column(s): {shown}")
    if extra:
        shown = ", ".join(map(repr, extra[:5])) + (" ..." if len(extra) > 5 else "")
        raise DataError(f"{path}: unexpected column(s) {shown}; expected ID_code, target, var_0..var_199")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise DataError(f"{path}: duplicated column(s) {', '.join(duplicated)}")


def load_features(path: str | Path, rows: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Feature rows and their ID_codes (None when the file has none), for scoring or
    requests."""
    path = Path(path)
    frame = read_frame(path)
    if rows is not None:
        frame = frame.head(rows)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    check_feature_columns(columns, path, allowed={ID_COLUMN, TARGET_COLUMN, *FEATURES})
    ids = frame[ID_COLUMN].astype(str).to_numpy() if ID_COLUMN in columns else None
    return _numeric(frame, list(FEATURES), path), ids
