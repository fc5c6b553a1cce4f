"""Loading a model version as the server does: one loader, used by the runtime and the tests.

`load_artifact` verifies the checksum and wraps each library's native model so that it answers
`predict_proba(X) -> (n, 2)`; `load_served` loads a version's model and threshold from its
settings, as the runtime does; `load_version` does the same from a version folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from santander import artifact, trees
from santander.additive import AdditiveTable
from santander.errors import ArtifactError
from santander.layout import SETTINGS_FILE, read_model_settings


class ProbabilityModel(Protocol):
    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


class XGBoostBooster:
    """An XGBoost classifier's booster, answering predict_proba like the sklearn wrapper.

    The wrapper's own predict_proba adds checks and conversions to every call, a large share
    of a one-row request's model time. One thread: the server runs many small predictions
    side by side, and on a busy 2-core machine XGBoost's default threading is far slower per
    row. Small batches of finite rows
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


class LightGBMBooster:
    """A LightGBM text model, answering predict_proba like the sklearn wrapper."""

    def __init__(self, path: Path):
        import lightgbm
        self.booster = lightgbm.Booster(model_file=str(path))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        positive = self.booster.predict(X, num_threads=1)
        return np.column_stack([1.0 - positive, positive])


class SklearnModel:
    """A pickled scikit-learn estimator, scoring in float64 whatever the request's dtype.

    Gaussian naive Bayes fitted on float32 rows keeps float32 means and variances, and sums
    200 log-likelihood terms in float32: its log-odds come out ~1e-3 off near p = 0.999. Its
    parameters are widened to float64 here, so the served probability is as exact as its
    per-feature contributions (santander/serving/explain.py)."""

    def __init__(self, estimator):
        from sklearn.naive_bayes import GaussianNB
        if isinstance(estimator, GaussianNB):
            for name in ("theta_", "var_", "class_prior_"):
                setattr(estimator, name, np.asarray(getattr(estimator, name), dtype=np.float64))
        self.estimator = estimator

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(np.asarray(X, dtype=np.float64))


def load_artifact(path: Path, artifact_format: str) -> ProbabilityModel:
    """Verify the checksum, then load a model answering predict_proba(X) -> (n, 2)."""
    artifact.verify(path)
    if artifact_format == "xgboost":
        return XGBoostBooster(path)
    if artifact_format == "lightgbm":
        return LightGBMBooster(path)
    if artifact_format == "additive":
        try:
            return AdditiveTable.load(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"artifact {path} is not an additive table: {exc}") from exc
    if artifact_format == "joblib":
        import joblib
        return SklearnModel(joblib.load(path))
    raise ArtifactError(f"unknown artifact format {artifact_format!r}")


def load_served(artifact_path: Path, extra: dict, where: str) -> tuple[ProbabilityModel, float]:
    """A version's model (checksum verified) and tuned threshold, from its artifact path and
    the `parameters.extra` of its settings. `where` names the version in errors."""
    try:
        artifact_format, threshold = extra["artifact_format"], float(extra["threshold"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{where}: settings lack what loading needs: {exc}") from exc
    return load_artifact(artifact_path, artifact_format), threshold


def load_version(version_dir: str | Path) -> tuple[ProbabilityModel, float]:
    """load_served for a version folder: what the runtime loads, for tools and tests."""
    settings = read_model_settings(version_dir)
    try:
        parameters = settings["parameters"]
        artifact_path = Path(version_dir) / parameters["uri"]
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{version_dir}/{SETTINGS_FILE} names no artifact: {exc}") from exc
    return load_served(artifact_path, parameters.get("extra") or {}, str(version_dir))
