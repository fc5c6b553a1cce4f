"""The model families and their search spaces. Declarative: nothing is fitted here.

Families go from simple to complex. The linear and tree-ensemble families weight the ~1:9
classes; the per-feature models and the boosters are fitted unweighted (their probabilities
stay calibrated); the decision threshold is tuned later in any case. The per-feature families
choose their smoothing per feature inside their own fit, so their spaces here are small. Every
estimator is single-threaded: selection runs folds in parallel, and on a busy 2-core box one
thread per fit is far faster than two fits fighting over both cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any, Callable

from sklearn.base import BaseEstimator
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from santander.config import SEED
from santander.training.estimators import EarlyStopping, HistogramNB, SplineAdditive

@dataclass(frozen=True)
class Family:
    name: str
    description: str
    complexity: int                       # 1 = simplest
    artifact_format: str                  # how export serialises the fitted model
    build: Callable[..., BaseEstimator]   # build(**params): a fresh, unfitted estimator
    space: dict[str, list[Any]] = field(default_factory=dict)
    quick_space: dict[str, list[Any]] = field(default_factory=dict)

    def configurations(self, quick: bool = False) -> list[dict[str, Any]]:
        space = self.quick_space if quick else self.space
        keys = sorted(space)
        return [dict(zip(keys, values)) for values in product(*(space[k] for k in keys))]

def _logistic(C: float) -> BaseEstimator:
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, class_weight="balanced", max_iter=300))

def _naive_bayes(var_smoothing: float) -> BaseEstimator:
    return GaussianNB(var_smoothing=var_smoothing)

def _histogram_nb() -> BaseEstimator:
    # Its bandwidth is chosen per feature inside its own fit.
    return HistogramNB()


def _additive(n_knots: int) -> BaseEstimator:
    # A spline per feature: non-monotone per-feature effects while features stay additive
    # (the real data is close to independent given the class). The roughness penalty is
    # chosen per feature inside the fit.
    return SplineAdditive(n_knots=n_knots)

def _extra_trees(max_depth: int, min_samples_leaf: int) -> BaseEstimator:
    return ExtraTreesClassifier(
        n_estimators=100, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
        max_features="sqrt", bootstrap=True, max_samples=0.2,
        class_weight="balanced_subsample", n_jobs=1, random_state=SEED)

# The boosters use the settings public solutions found for this data: shallow trees, a low
# learning rate, a very low feature fraction (features are near-independent, so trees on a
# few features each generalise best), many rounds, stopped early inside each fit. Unweighted:
# the decision threshold is tuned afterwards anyway. XGBoost's learning rate is higher than
# LightGBM's: its histograms are built row-wise over every feature, so a low feature fraction
# does not make its rounds cheaper, and at 0.05 its 5 folds alone would take most of the
# 10-minute selection budget (bench/selection.py measures the whole selection).
MAX_ROUNDS = 5_000


def _xgboost(max_depth: int, learning_rate: float,
             colsample_bytree: float) -> BaseEstimator:
    from xgboost import XGBClassifier
    return EarlyStopping(patience=100, estimator=XGBClassifier(
        tree_method="hist", max_depth=max_depth, learning_rate=learning_rate,
        n_estimators=MAX_ROUNDS, subsample=0.5, colsample_bytree=colsample_bytree,
        min_child_weight=10, eval_metric="logloss", n_jobs=1, random_state=SEED))


def _lightgbm(num_leaves: int, learning_rate: float,
              feature_fraction: float) -> BaseEstimator:
    from lightgbm import LGBMClassifier
    return EarlyStopping(LGBMClassifier(
        num_leaves=num_leaves, learning_rate=learning_rate, n_estimators=MAX_ROUNDS,
        subsample=0.4, subsample_freq=5, colsample_bytree=feature_fraction,
        min_child_samples=80, min_child_weight=10.0, n_jobs=1, random_state=SEED, verbose=-1))


FAMILIES: tuple[Family, ...] = (
    Family("logistic", "standardised features + L2 logistic regression", 1, "joblib",
           _logistic, space={"C": [0.01, 1.0]}, quick_space={"C": [0.01, 1.0]}),
    Family("naive_bayes", "Gaussian naive Bayes", 1, "joblib",
           _naive_bayes, space={"var_smoothing": [1e-9, 1e-3]},
           quick_space={"var_smoothing": [1e-9]}),
    Family("histogram_nb", "naive Bayes with smoothed per-feature class histograms", 2,
           "additive", _histogram_nb),
    Family("additive", "additive model: a cubic P-spline per feature (quantile knots), "
           "penalised logistic regression", 2, "additive", _additive,
           space={"n_knots": [24, 40]}, quick_space={"n_knots": [8]}),
    Family("extra_trees", "extremely randomised trees, class-balanced", 3, "joblib",
           _extra_trees, space={"max_depth": [10], "min_samples_leaf": [50]},
           quick_space={"max_depth": [8], "min_samples_leaf": [20]}),
    Family("xgboost", "XGBoost, depth-2 histogram trees on 5% of the features per tree, "
           "early-stopped", 4, "xgboost", _xgboost,
           space={"max_depth": [2], "learning_rate": [0.2], "colsample_bytree": [0.05]},
           quick_space={"max_depth": [2], "learning_rate": [0.3], "colsample_bytree": [0.3]}),
    Family("lightgbm", "LightGBM, 13-leaf trees on 5% of the features per tree, early-stopped",
           4, "lightgbm", _lightgbm,
           space={"num_leaves": [13], "learning_rate": [0.05], "feature_fraction": [0.05]},
           quick_space={"num_leaves": [4], "learning_rate": [0.3], "feature_fraction": [0.3]}),
)

FAMILY_BY_NAME = {family.name: family for family in FAMILIES}

def get_family(name: str) -> Family:
    try:
        return FAMILY_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILY_BY_NAME)}") from None
