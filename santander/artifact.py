"""Model artifacts on disk: native formats where the library has one, a sha256 beside each.

Shared by export (writes) and the serving runtime (reads), so it imports no training code;
the model libraries are imported only for the format in hand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from santander import trees
from santander.additive import AdditiveTable
from santander.errors import ExportError

FILENAMES = {"xgboost": "model.ubj", "lightgbm": "model.txt", "additive": "model.npz",
             "joblib": "model.joblib"}
CHECKSUM_SUFFIX = ".sha256"


class ProbabilityModel(Protocol):
    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(estimator: Any, artifact_format: str, folder: Path) -> Path:
    """Write the fitted estimator and `<file>.sha256` (sha256sum format) into folder."""
    path = folder / FILENAMES[artifact_format]
    # Boosters come inside an early-stopping wrapper; the library's model is its estimator_.
    model = getattr(estimator, "estimator_", estimator)
    if artifact_format == "xgboost":
        booster = model.get_booster()
        rounds = getattr(estimator, "best_iteration_", None)
        # XGBoost keeps the rounds past the best one; the served model stops where CV did.
        (booster[:rounds] if rounds else booster).save_model(path)
    elif artifact_format == "lightgbm":
        model.booster_.save_model(path)     # LightGBM saves up to its best iteration
    elif artifact_format == "additive":
        estimator.table_.save(path)         # plain arrays: no pickle, no class of ours
    else:
        import joblib
        joblib.dump(estimator, path)
    (folder / (path.name + CHECKSUM_SUFFIX)).write_text(f"{sha256_file(path)}  {path.name}\n")
    return path


def verify(path: Path) -> None:
    """Raise ExportError unless the artifact exists and matches its recorded sha256."""
    checksum_file = path.with_name(path.name + CHECKSUM_SUFFIX)
    if not path.is_file():
        raise ExportError(f"artifact {path} is missing")
    if not checksum_file.is_file():
        raise ExportError(f"checksum file {checksum_file} is missing")
    expected = (checksum_file.read_text().split() or [""])[0]
    actual = sha256_file(path)
    if actual != expected:
        raise ExportError(f"artifact {path} is corrupted: sha256 {actual} != recorded {expected}")


class _XGBoostBooster:
    """An XGBoost classifier's booster, answering predict_proba like the sklearn wrapper.

    The wrapper's own predict_proba costs ~0.13 ms more per call than the booster's
    inplace_predict (checks and conversions), a third of a one-row request's model time.
    One thread: the server runs many small predictions side by side, and on a busy 2-core
    machine XGBoost's default threading was 7x slower per row. Small batches of finite rows
    skip XGBoost's fixed per-call cost through `trees.SmallBatchTrees` (verified against
    XGBoost at load; None, and XGBoost for everything, when it cannot reproduce the model).
    """

    def __init__(self, path: Path):
        from xgboost import XGBClassifier
        classifier = XGBClassifier(n_jobs=1)
        classifier.load_model(path)
        self.booster = classifier.get_booster()
        self.booster.set_param({"nthread": 1})
        self.small_batches = trees.SmallBatchTrees.from_booster(self.booster)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        small = self.small_batches
        if (small is not None and X.ndim == 2 and X.shape[1] == small.n_features
                and len(X) <= trees.SMALL_BATCH_ROWS and np.isfinite(X).all()):
            positive = small.predict(X)
        else:
            positive = self.booster.inplace_predict(X)
        return np.column_stack([1.0 - positive, positive])


class _LightGBMBooster:
    """A LightGBM text model, answering predict_proba like the sklearn wrapper."""

    def __init__(self, path: Path):
        import lightgbm
        self.booster = lightgbm.Booster(model_file=str(path))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        positive = self.booster.predict(X, num_threads=1)
        return np.column_stack([1.0 - positive, positive])


def load(path: Path, artifact_format: str) -> ProbabilityModel:
    """Verify the checksum, then load a model answering predict_proba(X) -> (n, 2)."""
    verify(path)
    if artifact_format == "xgboost":
        return _XGBoostBooster(path)
    if artifact_format == "lightgbm":
        return _LightGBMBooster(path)
    if artifact_format == "additive":
        try:
            return AdditiveTable.load(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ExportError(f"artifact {path} is not an additive table: {exc}") from exc
    if artifact_format == "joblib":
        import joblib
        return joblib.load(path)
    raise ExportError(f"unknown artifact format {artifact_format!r}")
