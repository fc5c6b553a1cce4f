"""Reading and writing tables as CSV or parquet: one-line errors on read, atomic writes.

Shared by training data (santander/training/data/io.py), outcome labels and the rows a
retrain takes from the prediction log (santander/monitoring/).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from santander.atomic import staged_file
from santander.errors import DataError
from santander.schema import ID_COLUMN

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
