"""Per-feature (additive) classifiers, fitted directly as additive log-odds tables.

The real data is close to independent given the class, and the strongest public solutions
modelled one feature at a time. Both estimators here put every feature on the same grid (its
training quantiles) and learn a piecewise-linear log-odds function over it:

* `SplineAdditive`: a generalised additive model. Each function is a cubic B-spline in the
  feature's quantile level (so knots follow the data), all fitted jointly by L2-penalised
  logistic regression (`C` as in scikit-learn). The design matrix (rows x features x bases) is
  never built: the loss and its gradient go through the grid positions with gathers and
  bincounts, so memory stays at two small arrays per row and feature.
* `HistogramNB`: naive Bayes with nonparametric class densities: per-class histograms over the
  grid, smoothed by a Gaussian kernel of `bandwidth` bins, and their log ratio.

`EarlyStopping` wraps XGBoost and LightGBM so that each fit picks its own number of rounds.

The additive two expose `table_` (santander.additive.AdditiveTable), which is what export writes and the
server loads; `predict_proba` scores through it, so CV measures the served model.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, optimize, special
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import SplineTransformer

from santander.additive import AdditiveTable, interpolate, locate

GRID_POINTS = 257           # quantile levels 0, 1/256, ..., 1 per feature
_GRID_SAMPLE = 60_000       # rows the quantiles are read from (more changes nothing visible)
_LOSS_BLOCK = 8_192         # rows per step of the loss: bounds its scratch memory (~15 MB an array)
_CENTRE_ROWS = 20_000       # rows a table's per-feature mean contribution is taken over


def quantile_grid(X: np.ndarray, points: int = GRID_POINTS, seed: int = 0) -> np.ndarray:
    """(F, points): each feature's quantiles at evenly spaced levels, from min to max."""
    rows = X
    if len(X) > _GRID_SAMPLE:
        keep = np.random.default_rng(seed).choice(len(X), _GRID_SAMPLE, replace=False)
        rows = X[np.sort(keep)]
    grid = np.quantile(rows, np.linspace(0, 1, points), axis=0).T
    grid[:, 0] = X.min(axis=0)
    grid[:, -1] = X.max(axis=0)
    return np.maximum.accumulate(grid, axis=1)


class _Additive(ClassifierMixin, BaseEstimator):
    """What both share: classes, scoring through the table."""

    def _check_target(self, y: np.ndarray) -> np.ndarray:
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"{type(self).__name__} needs two classes, got {self.classes_}")
        return (np.asarray(y) == self.classes_[1]).astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.table_.predict_proba(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.table_.log_odds(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[(self.table_.log_odds(X) > 0).astype(int)]


def _centred_table(grid: np.ndarray, values: np.ndarray, intercept: float,
                   X: np.ndarray) -> AdditiveTable:
    """The same function with each feature's mean contribution over (a sample of) the training
    rows moved into the intercept: a contribution then reads as 'above or below a typical
    row'. Scores do not change."""
    means = AdditiveTable(grid, values, 0.0).contributions(X[:_CENTRE_ROWS]).mean(axis=0)
    return AdditiveTable(grid=grid, values=values - means[:, None],
                         intercept=float(intercept + means.sum()))


class SplineAdditive(_Additive):
    def __init__(self, n_knots: int = 12, C: float = 0.01, max_iter: int = 400):
        self.n_knots = n_knots
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SplineAdditive":
        target = self._check_target(y)
        grid = quantile_grid(X)
        n_features, n_points = grid.shape
        index, alpha = locate(grid, X, np.int32, np.float32)
        levels = np.linspace(0, 1, n_points)[:, None]
        basis = SplineTransformer(n_knots=self.n_knots, degree=3).fit_transform(levels)  # (P, K)
        n_bases = basis.shape[1]
        size = n_features * n_points

        def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
            intercept, theta = params[0], params[1:].reshape(n_features, n_bases)
            values = theta @ basis.T                               # (F, P)
            loss, grad_intercept = 0.0, 0.0
            grad_values = np.zeros(size)
            for start in range(0, len(target), _LOSS_BLOCK):
                block = slice(start, start + _LOSS_BLOCK)
                idx, a, t = index[block], alpha[block], target[block]
                z = intercept + interpolate(values, idx, a).sum(axis=1)
                loss += float(np.sum(np.logaddexp(0.0, z) - t * z))
                residual = special.expit(z) - t
                grad_intercept += float(residual.sum())
                # A value at grid point i gets (1 - a) * residual; point i + 1 gets
                # a * residual: two bincounts over the lower points, the second shifted by one.
                flat = idx.ravel()
                toward_next = np.bincount(flat, (residual[:, None] * a).ravel(), minlength=size)
                grad_values += np.bincount(flat, np.repeat(residual, idx.shape[1]),
                                           minlength=size) - toward_next
                grad_values[1:] += toward_next[:-1]
            grad_theta = grad_values.reshape(n_features, n_points) @ basis
            value = self.C * loss + 0.5 * float(theta.ravel() @ theta.ravel())
            gradient = np.concatenate([[self.C * grad_intercept],
                                       (self.C * grad_theta + theta).ravel()])
            return value, gradient

        start = np.zeros(1 + n_features * n_bases)
        start[0] = special.logit(np.clip(target.mean(), 1e-6, 1 - 1e-6))
        result = optimize.minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B",
                                   options={"maxiter": self.max_iter, "gtol": 1e-5})
        self.n_iter_ = int(result.nit)
        theta = result.x[1:].reshape(n_features, n_bases)
        del index, alpha
        self.table_ = _centred_table(grid, theta @ basis.T, float(result.x[0]), X)
        return self


class HistogramNB(_Additive):
    def __init__(self, bandwidth: float = 4.0):
        self.bandwidth = bandwidth

    def fit(self, X: np.ndarray, y: np.ndarray) -> "HistogramNB":
        target = self._check_target(y).astype(bool)
        # About 8 rows of the rarer class per bin at most: with fewer, the per-feature log
        # ratios are mostly noise, and their sum over 200 features saturates.
        rarer = int(min(target.sum(), (~target).sum()))
        grid = quantile_grid(X, int(np.clip(rarer // 8, 16, GRID_POINTS - 1)) + 1)
        n_features, n_points = grid.shape
        index = locate(grid, X, np.int32, np.float32)[0]
        # Bin b of a feature is [grid[b], grid[b + 1]); its count per class, smoothed.
        log_density = []
        for rows in (~target, target):
            counts = np.bincount(index[rows].ravel(), minlength=n_features * n_points)
            counts = counts.reshape(n_features, n_points)[:, :-1].astype(np.float64)
            smooth = ndimage.gaussian_filter1d(counts, self.bandwidth, axis=1, mode="nearest")
            log_density.append(np.log(smooth + 0.5) - np.log(rows.sum()))
        ratio = log_density[1] - log_density[0]
        centres = (grid[:, :-1] + grid[:, 1:]) / 2
        del index
        prior = float(np.log(target.sum() / (~target).sum()))
        self.table_ = _centred_table(centres, ratio, prior, X)
        return self


class EarlyStopping(ClassifierMixin, BaseEstimator):
    """A boosted model whose number of rounds is chosen inside its own fit.

    A stratified `validation_fraction` of the rows it is given is held out, and boosting stops
    `patience` rounds after the held-out log-loss last improved. Inside cross-validation that
    keeps the stopping point off the fold being scored. `estimator_` is the library's own
    fitted model (export writes it up to the best round).
    """

    def __init__(self, estimator: BaseEstimator, validation_fraction: float = 0.1,
                 patience: int = 200):
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.patience = patience

    def fit(self, X: np.ndarray, y: np.ndarray) -> "EarlyStopping":
        X_fit, X_stop, y_fit, y_stop = train_test_split(
            X, y, test_size=self.validation_fraction, stratify=y, random_state=0)
        model = clone(self.estimator)
        if type(model).__module__.startswith("lightgbm"):
            import lightgbm
            model.fit(X_fit, y_fit, eval_X=(X_stop,), eval_y=(y_stop,),
                      callbacks=[lightgbm.early_stopping(self.patience, verbose=False)])
            self.best_iteration_ = int(model.best_iteration_)
        else:
            model.set_params(early_stopping_rounds=self.patience)
            model.fit(X_fit, y_fit, eval_set=[(X_stop, y_stop)], verbose=False)
            self.best_iteration_ = int(model.best_iteration) + 1
        self.estimator_ = model
        self.classes_ = model.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X)
