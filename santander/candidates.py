"""The model families and their search spaces. Declarative: nothing is fitted here.

Families go from simple to complex. Each handles the ~1:9 class imbalance its own way (class
weights or `scale_pos_weight`); the decision threshold is tuned later in any case. Every
estimator is single-threaded: selection runs folds in parallel, and on a busy 2-core box one
thread per fit is far faster than two fits fighting over both cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any, Callable

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, StandardScaler

from santander.config import SEED

@dataclass(frozen=True)
class Family:
    name: str
    description: str
    complexity: int                       # 1 = simplest
    artifact_format: str                  # how export serialises the fitted model
    build: Callable[..., BaseEstimator]   # build(pos_weight=..., **params)
    space: dict[str, list[Any]] = field(default_factory=dict)
    quick_space: dict[str, list[Any]] = field(default_factory=dict)

    def configurations(self, quick: bool = False) -> list[dict[str, Any]]:
        space = self.quick_space if quick else self.space
        keys = sorted(space)
        return [dict(zip(keys, values)) for values in product(*(space[k] for k in keys))]

def _logistic(pos_weight: float, C: float) -> BaseEstimator:
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, class_weight="balanced", max_iter=300))

def _naive_bayes(pos_weight: float, var_smoothing: float) -> BaseEstimator:
    return GaussianNB(var_smoothing=var_smoothing)

class ChunkedBins(KBinsDiscretizer):
    """KBinsDiscretizer whose transform encodes a block of rows at a time.

    One-hot encoding 128,000 x 200 values at once peaked ~700 MB above the data (float64
    and int64 intermediates), enough to push a full selection past 3 GiB with two fits side
    by side; in blocks the intermediates stay small and the sparse result is the same.
    """

    block_rows = 16_384

    def transform(self, X):
        if X.shape[0] <= self.block_rows or self.encode != "onehot":
            return super().transform(X)
        return sparse.vstack([super(ChunkedBins, self).transform(X[start:start + self.block_rows])
                              for start in range(0, X.shape[0], self.block_rows)], format="csr")


def _additive(pos_weight: float, n_bins: int, C: float) -> BaseEstimator:
    # One weight per (feature, quantile bin): a sum of per-feature step functions, so a
    # feature's effect may be non-monotone while features stay additive (the real data is
    # close to independent given the class). Sparse one-hot keeps it fast and small.
    return make_pipeline(
        ChunkedBins(n_bins=n_bins, encode="onehot", strategy="quantile", dtype=np.float32,
                         quantile_method="averaged_inverted_cdf", subsample=50_000,
                         random_state=SEED),
        LogisticRegression(C=C, class_weight="balanced", max_iter=500))

def _extra_trees(pos_weight: float, max_depth: int, min_samples_leaf: int) -> BaseEstimator:
    return ExtraTreesClassifier(
        n_estimators=100, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
        max_features="sqrt", bootstrap=True, max_samples=0.2,
        class_weight="balanced_subsample", n_jobs=1, random_state=SEED)

def _xgboost(pos_weight: float, max_depth: int, learning_rate: float,
             n_estimators: int) -> BaseEstimator:
    from xgboost import XGBClassifier
    return XGBClassifier(
        tree_method="hist", max_depth=max_depth, learning_rate=learning_rate,
        n_estimators=n_estimators, subsample=0.8, colsample_bytree=0.3,
        scale_pos_weight=pos_weight, eval_metric="logloss", n_jobs=1, random_state=SEED)

def _lightgbm(pos_weight: float, num_leaves: int, learning_rate: float,
              n_estimators: int) -> BaseEstimator:
    from lightgbm import LGBMClassifier
    return LGBMClassifier(
        num_leaves=num_leaves, learning_rate=learning_rate, n_estimators=n_estimators,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.3, scale_pos_weight=pos_weight,
        n_jobs=1, random_state=SEED, verbose=-1)

FAMILIES: tuple[Family, ...] = (
    Family("logistic", "standardised features + L2 logistic regression", 1, "joblib",
           _logistic, space={"C": [0.01, 1.0]}, quick_space={"C": [0.01, 1.0]}),
    Family("naive_bayes", "Gaussian naive Bayes", 1, "joblib",
           _naive_bayes, space={"var_smoothing": [1e-9, 1e-3]},
           quick_space={"var_smoothing": [1e-9]}),
    Family("additive", "additive model: per-feature quantile bins + logistic regression",
           2, "joblib", _additive,
           space={"n_bins": [8], "C": [0.01, 0.1]},
           quick_space={"n_bins": [6], "C": [0.01, 0.1]}),
    Family("extra_trees", "extremely randomised trees, class-balanced", 3, "joblib",
           _extra_trees, space={"max_depth": [10], "min_samples_leaf": [50]},
           quick_space={"max_depth": [8], "min_samples_leaf": [20]}),
    Family("xgboost", "XGBoost, histogram trees, scale_pos_weight", 4, "xgboost",
           _xgboost,
           space={"max_depth": [2, 3], "learning_rate": [0.2], "n_estimators": [300]},
           quick_space={"max_depth": [1, 2], "learning_rate": [0.3], "n_estimators": [60]}),
    Family("lightgbm", "LightGBM, leaf-wise trees, scale_pos_weight", 4, "lightgbm",
           _lightgbm,
           space={"num_leaves": [2, 4], "learning_rate": [0.2], "n_estimators": [300]},
           quick_space={"num_leaves": [2, 4], "learning_rate": [0.3], "n_estimators": [60]}),
)

FAMILY_BY_NAME = {family.name: family for family in FAMILIES}

def get_family(name: str) -> Family:
    try:
        return FAMILY_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILY_BY_NAME)}") from None
