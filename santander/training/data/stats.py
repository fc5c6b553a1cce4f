"""The compact per-feature table of published statistics the generator is built from.

The published files (`shared/santander-stats/`) are not shipped with the product; this module
derives from them one small CSV kept inside the package (`feature_stats.csv`), so the
generator works in a user's clone where `shared/` does not exist.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from santander.schema import FEATURES
from santander.errors import DataError

TABLE_NAME = "feature_stats.csv"
TABLE_COLUMNS = ("mean", "std", "min", "max", "q01", "q99", "q01_0", "q99_0", "q01_1", "q99_1")


def derive_feature_table(stats_dir: str | Path) -> pd.DataFrame:
    """Read the published statistics files and return one row per feature."""
    stats_dir = Path(stats_dir)
    try:
        info = pd.read_csv(stats_dir / "tr_info.csv", index_col=0)
        quantiles = {
            suffix: pd.read_csv(stats_dir / f"train{suffix}_q001-099.csv", index_col=0)
            for suffix in ("", "_0", "_1")
        }
    except OSError as exc:
        raise DataError(f"cannot read published statistics in {stats_dir}: {exc}") from exc
    table = pd.DataFrame(index=pd.Index(FEATURES, name="feature"))
    for column, source in (("mean", "Mean"), ("std", "Std"), ("min", "Min"), ("max", "Max")):
        table[column] = info.loc[list(FEATURES), source].astype(float)
    for suffix, frame in quantiles.items():
        table[f"q01{suffix}"] = frame.loc[list(FEATURES), "0.01"].astype(float)
        table[f"q99{suffix}"] = frame.loc[list(FEATURES), "0.99"].astype(float)
    return table[list(TABLE_COLUMNS)].round(6)


def load_feature_table() -> pd.DataFrame:
    """The table shipped in the package."""
    with resources.files("santander.training.data").joinpath(TABLE_NAME).open("r") as handle:
        table = pd.read_csv(handle, index_col="feature")
    return table[list(TABLE_COLUMNS)]


def write_feature_table(stats_dir: str | Path, out: str | Path) -> Path:
    out = Path(out)
    derive_feature_table(stats_dir).to_csv(out, float_format="%.6f")
    return out
