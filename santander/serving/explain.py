"""Per-feature contributions to a row's log-odds: the `contributions` output.

Each explainer returns (n, 201): the contribution of var_0..var_199 to the log-odds, then the
bias, so that a row sums to logit(probability). Only exact forms are offered:
* XGBoost and LightGBM: the libraries' own TreeSHAP (`pred_contribs` / `pred_contrib`);
* additive tables (histogram_nb, additive): the table's own per-feature terms;
* logistic regression on standardised features: coef_j * (x_j - mean_j) / scale_j;
* Gaussian naive Bayes: each feature's class log-likelihood ratio, the log prior ratio as bias.
Other models (extremely randomised trees) get None: the runtime refuses the output with a 400
rather than answer an approximation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from santander.additive import AdditiveTable

Explainer = Callable[[np.ndarray], np.ndarray]


def _xgboost(booster) -> Explainer:
    import xgboost

    def explain(X: np.ndarray) -> np.ndarray:
        matrix = xgboost.DMatrix(np.asarray(X, dtype=np.float32),
                                 feature_names=booster.feature_names, nthread=1)
        return booster.predict(matrix, pred_contribs=True)
    return explain


def _lightgbm(booster) -> Explainer:
    return lambda X: booster.predict(X, pred_contrib=True, num_threads=1)


def _additive(table: AdditiveTable) -> Explainer:
    def explain(X: np.ndarray) -> np.ndarray:
        terms = table.contributions(X)
        return np.column_stack([terms, np.full(len(terms), table.intercept)])
    return explain


def _logistic(scaler, regression) -> Explainer:
    coef = regression.coef_[0] / scaler.scale_
    offset = regression.intercept_[0]

    def explain(X: np.ndarray) -> np.ndarray:
        terms = (np.asarray(X, dtype=np.float64) - scaler.mean_) * coef
        return np.column_stack([terms, np.full(len(terms), offset)])
    return explain


def _gaussian_nb(model) -> Explainer:
    # sklearn's joint log-likelihood, class by class, is a sum of per-feature terms; for two
    # classes logit(P(1|x)) is the difference of the two sums plus the log prior ratio.
    mean, var = model.theta_, model.var_
    log_norm = -0.5 * np.log(2.0 * np.pi * var)           # (2, F)
    prior = float(np.log(model.class_prior_[1]) - np.log(model.class_prior_[0]))

    def explain(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        per_class = [log_norm[c] - 0.5 * (X - mean[c]) ** 2 / var[c] for c in (0, 1)]
        terms = per_class[1] - per_class[0]
        return np.column_stack([terms, np.full(len(terms), prior)])
    return explain


def explainer_for(model) -> Explainer | None:
    """The exact contributions of a loaded model (santander/loader.py), or None."""
    from santander.loader import LightGBMBooster, SklearnModel, XGBoostBooster
    if isinstance(model, XGBoostBooster):
        return _xgboost(model.booster)
    if isinstance(model, LightGBMBooster):
        return _lightgbm(model.booster)
    if isinstance(model, AdditiveTable):
        return _additive(model)
    if not isinstance(model, SklearnModel):
        return None
    model = model.estimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    if isinstance(model, GaussianNB) and len(model.classes_) == 2:
        return _gaussian_nb(model)
    if isinstance(model, Pipeline) and len(model.steps) == 2:
        scaler, regression = (step for _, step in model.steps)
        if (isinstance(scaler, StandardScaler) and isinstance(regression, LogisticRegression)
                and regression.coef_.shape[0] == 1 and scaler.with_mean and scaler.with_std):
            return _logistic(scaler, regression)
    return None
