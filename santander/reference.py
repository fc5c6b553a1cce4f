"""A version's reference sample: training rows and the version's own scores on them, stored
beside the artifact at export (`reference.parquet`, checksummed like it), so that drift can
be measured later against what the model was trained on (santander/monitoring/drift.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from santander import artifact
from santander.config import REFERENCE_ROWS, SEED
from santander.errors import ArtifactError
from santander.layout import REFERENCE_FILE
from santander.schema import FEATURES, OUTPUT_PROBABILITY


def reference_sample(X: np.ndarray, probability_of, rows: int = REFERENCE_ROWS,
                     seed: int = SEED) -> pd.DataFrame:
    """Up to `rows` rows of X drawn at random, with `probability_of(rows)` as `probability`."""
    picked = np.sort(np.random.default_rng(seed).choice(len(X), min(rows, len(X)),
                                                        replace=False))
    sample = np.asarray(X[picked], dtype=np.float32)
    frame = pd.DataFrame(sample, columns=list(FEATURES))
    frame[OUTPUT_PROBABILITY] = np.asarray(probability_of(sample), dtype=np.float64)
    return frame


def write_reference(frame: pd.DataFrame, folder: Path) -> Path:
    """Into a version's (staging) folder, with its sha256 beside."""
    path = Path(folder) / REFERENCE_FILE
    frame.to_parquet(path, index=False)
    artifact.write_checksum(path)
    return path


def read_reference(version_dir: str | Path) -> pd.DataFrame:
    """The version's reference sample, checksum verified."""
    path = Path(version_dir) / REFERENCE_FILE
    if not path.exists():
        raise ArtifactError(f"version {Path(version_dir).name} has no reference sample "
                            f"({path}): it was exported before drift monitoring; retrain to "
                            "get one")
    artifact.verify(path)
    frame = pd.read_parquet(path)
    missing = [c for c in (*FEATURES, OUTPUT_PROBABILITY) if c not in frame.columns]
    if missing:
        raise ArtifactError(f"{path} lacks column(s) {', '.join(missing[:5])}")
    return frame
