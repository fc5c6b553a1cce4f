"""Per-feature (additive) classifiers, fitted directly as additive log-odds tables.

The real data is close to independent given the class, and the strongest public solutions
modelled one feature at a time. Under that independence the Bayes log-odds of a row is the
prior log-odds plus, per feature, (that feature's own log-odds - the prior log-odds). So each
feature can be fitted on its own, with its own amount of smoothing:

* every feature is cut into bins (`feature_grid`: at its quantiles and evenly in value), and
  each bin's rows and positives are counted per fold: after that nothing depends on the
  number of rows;
* for each smoothing setting, each fold's per-feature log-odds are fitted on the other folds'
  counts and scored (binomial deviance) on its own; each feature keeps the setting that scored
  best for it. A feature with a weak effect gets a flat function, a wiggly one a flexible one;
* the sum of 200 estimated functions is noisier than each of them, so its scale is calibrated:
  a one-feature logistic regression on the out-of-fold sums gives the slope and intercept the
  served table is multiplied by (the stacking step of per-feature solutions).

Two smoothers:

* `SplineAdditive`: a cubic P-spline per feature over its bins (so knots follow the data):
  penalised logistic regression on the binned counts, the penalty on second differences
  of the coefficients (roughness, not size), its weight chosen per feature.
* `HistogramNB`: naive Bayes with nonparametric class densities: per-class histograms smoothed
  by a Gaussian kernel, the bandwidth chosen per feature.

`EarlyStopping` wraps XGBoost and LightGBM so that each fit picks its own number of rounds.

The additive two expose `table_` (santander.additive.AdditiveTable), which is what export
writes and the server loads; `predict_proba` scores through it, so CV measures the served model.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, special
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import SplineTransformer

from santander.additive import AdditiveTable, Locator

GRID_POINTS = 257           # quantile levels 0, 1/256, ..., 1 per feature
_GRID_SAMPLE = 60_000       # rows the quantiles are read from (more changes nothing visible)
_CENTRE_ROWS = 20_000       # rows a table's per-feature mean contribution is taken over
_INNER_FOLDS = 5
_COUNT_BLOCK = 16_384       # rows binned and counted at a time: bounds the scratch memory
_NEWTON_STEPS = 30


def feature_grid(X: np.ndarray, points: int = GRID_POINTS, seed: int = 0) -> np.ndarray:
    """(F, points) per feature, non-decreasing from its min to its max: half the points at its
    quantiles (evenly spaced levels), half evenly spaced in value, merged.

    Quantiles alone leave the tails with a bin or two each, yet that is where an effect that
    keeps growing (a ramp) changes most per bin; even spacing alone spends bins on empty
    ranges (BENCHMARKS.md, Quality, has what it bought on the second generator).
    """
    rows = X
    if len(X) > _GRID_SAMPLE:
        keep = np.random.default_rng(seed).choice(len(X), _GRID_SAMPLE, replace=False)
        rows = X[np.sort(keep)]
    n_quantiles = points // 2 + 1
    quantiles = np.quantile(rows, np.linspace(0, 1, n_quantiles), axis=0).T
    low, high = X.min(axis=0)[:, None], X.max(axis=0)[:, None]
    even = low + (high - low) * np.linspace(0, 1, points - n_quantiles + 2)[None, 1:-1]
    grid = np.sort(np.concatenate([low, quantiles[:, 1:-1], even, high], axis=1), axis=1)
    return np.maximum.accumulate(grid, axis=1)


class BinnedCounts:
    """Each feature cut into `bins` bins; rows and positives per bin, per fold.

    `bin` (rows, F) is each value's bin; `rows[k]`, `positives[k]` (F, bins) are fold k's counts.
    """

    def __init__(self, X: np.ndarray, target: np.ndarray, bins: int, folds: int, seed: int = 0):
        self.edges = feature_grid(X, bins + 1)
        n_features = X.shape[1]
        locator = Locator(self.edges)
        first = np.arange(n_features) * (bins + 1)
        self.bin = np.empty(X.shape, dtype=np.int16)
        for start in range(0, len(X), _COUNT_BLOCK):
            block = slice(start, start + _COUNT_BLOCK)
            self.bin[block] = locator(np.asarray(X[block], dtype=np.float64))[0] - first
        self.fold = np.empty(len(target), dtype=np.int8)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(target)), target)):
            self.fold[held_out] = k
        size = n_features * bins
        offset = np.arange(n_features) * bins
        self.rows = np.zeros((folds, size))
        self.positives = np.zeros((folds, size))
        for start in range(0, len(X), _COUNT_BLOCK):
            block = slice(start, start + _COUNT_BLOCK)
            flat = (self.bin[block] + offset).ravel()
            # Fold k's entries, counted into its own stretch of one long array.
            flat += np.repeat(self.fold[block].astype(np.int64) * size, n_features)
            self.rows += np.bincount(flat, minlength=folds * size).reshape(folds, size)
            self.positives += np.bincount(flat, np.repeat(target[block], n_features),
                                          minlength=folds * size).reshape(folds, size)
        self.rows = self.rows.reshape(folds, n_features, bins)
        self.positives = self.positives.reshape(folds, n_features, bins)

    @property
    def centres(self) -> np.ndarray:
        return (self.edges[:, :-1] + self.edges[:, 1:]) / 2

    def without(self, k: int | None) -> tuple[np.ndarray, np.ndarray]:
        """All counts but fold k's (all of them for None)."""
        keep = np.arange(len(self.rows)) != k
        return self.rows[keep].sum(axis=0), self.positives[keep].sum(axis=0)

    def lookup(self, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(rows, F): each of the given rows' per-feature value in table (F, bins)."""
        return table[np.arange(table.shape[0])[None, :], self.bin[rows]]


def _deviance(log_odds: np.ndarray, rows: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """(F,) binomial deviance (halved) of per-bin log-odds against per-bin counts."""
    return (rows * np.logaddexp(0.0, log_odds) - positives * log_odds).sum(axis=1)


class _Additive(ClassifierMixin, BaseEstimator):
    """What both share: per-feature smoothing chosen per feature, a calibrated sum, scoring
    through the table. A subclass gives its smoothing settings and its smoother."""

    def _settings(self) -> list:
        raise NotImplementedError

    def _bins(self, target: np.ndarray) -> int:
        return GRID_POINTS - 1

    def _log_odds(self, rows: np.ndarray, positives: np.ndarray, setting) -> np.ndarray:
        """(F, bins) per-feature log-odds fitted to per-bin counts, with one setting."""
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray) -> "_Additive":
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"{type(self).__name__} needs two classes, got {self.classes_}")
        target = (np.asarray(y) == self.classes_[1]).astype(np.float64)
        counts = BinnedCounts(X, target, self._bins(target), _INNER_FOLDS)
        settings = self._settings()
        n_features = X.shape[1]

        # Per fold and setting: the held-out deviance of each feature's function, and the
        # function itself minus the prior it was fitted under (each fold's positive rate
        # differs a little, and 200 features would multiply that difference by 200).
        deviance = np.zeros((len(settings), n_features))
        held_out = np.empty((len(settings), _INNER_FOLDS, n_features, counts.rows.shape[2]))
        for s, setting in enumerate(settings):
            for k in range(_INNER_FOLDS):
                rows, positives = counts.without(k)
                log_odds = self._log_odds(rows, positives, setting)
                deviance[s] += _deviance(log_odds, counts.rows[k], counts.positives[k])
                held_out[s, k] = log_odds - _logit(positives[0].sum() / rows[0].sum())
        best = deviance.argmin(axis=0)
        self.settings_ = [settings[s] for s in best]
        features = np.arange(n_features)

        oof_sum = np.empty(len(target))
        for k in range(_INNER_FOLDS):
            mine = counts.fold == k
            oof_sum[mine] = counts.lookup(held_out[best, k, features], mine).sum(axis=1)
        calibration = LogisticRegression(C=1e6).fit(oof_sum[:, None], target)
        self.slope_ = float(calibration.coef_[0, 0])

        rows, positives = counts.without(None)
        prior = _logit(positives[0].sum() / rows[0].sum())
        # The refit: each setting only on the features that chose it (features are fitted
        # independently, so this is the same as fitting all and picking).
        values = np.empty_like(rows)
        for s in np.unique(best):
            chose = best == s
            values[chose] = self._log_odds(rows[chose], positives[chose], settings[s])
        values = self.slope_ * (values - prior)
        self.table_ = _centred_table(counts.centres, values,
                                     float(calibration.intercept_[0]), X)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.table_.predict_proba(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.table_.log_odds(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[(self.table_.log_odds(X) > 0).astype(int)]


def _logit(p: float) -> float:
    return float(special.logit(np.clip(p, 1e-9, 1 - 1e-9)))


def _centred_table(grid: np.ndarray, values: np.ndarray, intercept: float,
                   X: np.ndarray) -> AdditiveTable:
    """The same function with each feature's mean contribution over (a sample of) the training
    rows moved into the intercept: a contribution then reads as 'above or below a typical
    row'. Scores do not change."""
    means = AdditiveTable(grid, values, 0.0).contributions(X[:_CENTRE_ROWS]).mean(axis=0)
    return AdditiveTable(grid=grid, values=values - means[:, None],
                         intercept=float(intercept + means.sum()))


class SplineAdditive(_Additive):
    """A cubic P-spline per feature with `n_knots` knots evenly over its bins; the weight
    of the roughness penalty is chosen per feature among `penalties`."""

    def __init__(self, n_knots: int = 24,
                 penalties: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)):
        self.n_knots = n_knots
        self.penalties = penalties

    def _settings(self) -> list:
        return list(self.penalties)

    def _log_odds(self, rows: np.ndarray, positives: np.ndarray, penalty: float) -> np.ndarray:
        n_bins = rows.shape[1]
        levels = (np.arange(n_bins) + 0.5) / n_bins
        basis = (SplineTransformer(n_knots=self.n_knots, degree=3)
                 .fit([[0.0], [1.0]]).transform(levels[:, None]))            # (bins, K)
        n_bases = basis.shape[1]
        difference = np.diff(np.eye(n_bases), n=2, axis=0)
        # Second differences leave a line unpenalised; the small ridge keeps the system
        # solvable in bins with no rows.
        roughness = penalty * (difference.T @ difference) + 1e-6 * np.eye(n_bases)
        # B-splines sum to one, so a constant theta is the flat function at the feature's rate.
        rate = (positives.sum(axis=1) + 0.5) / (rows.sum(axis=1) + 1.0)
        theta = np.repeat(special.logit(rate)[:, None], n_bases, axis=1)
        for _ in range(_NEWTON_STEPS):
            log_odds = theta @ basis.T
            p = special.expit(log_odds)
            gradient = (positives - rows * p) @ basis - theta @ roughness
            weighted = basis.T[None, :, :] * (rows * p * (1 - p))[:, None, :]   # (F, K, bins)
            step = np.linalg.solve(weighted @ basis + roughness, gradient[..., None])[..., 0]
            theta += step
            if np.abs(step).max() < 1e-7:
                break
        return theta @ basis.T


class HistogramNB(_Additive):
    """Naive Bayes with each class's density a histogram smoothed by a Gaussian kernel; the
    kernel's width in bins is chosen per feature among `bandwidths`."""

    def __init__(self, bandwidths: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)):
        self.bandwidths = bandwidths

    def _settings(self) -> list:
        return list(self.bandwidths)

    def _bins(self, target: np.ndarray) -> int:
        # About 8 rows of the rarer class per bin at most: finer bins only add noise.
        rarer = int(min(target.sum(), len(target) - target.sum()))
        return int(np.clip(rarer // 8, 16, GRID_POINTS - 1))

    def _log_odds(self, rows: np.ndarray, positives: np.ndarray, bandwidth: float) -> np.ndarray:
        log_density = []
        for counts in (rows - positives, positives):
            smooth = ndimage.gaussian_filter1d(counts, bandwidth, axis=1, mode="nearest")
            log_density.append(np.log(smooth + 0.5) - np.log(counts.sum(axis=1, keepdims=True)))
        log_odds = log_density[1] - log_density[0]
        # The log of a smoothed count is biased low, the more so the fewer rows; summed over
        # 200 features that bias differs by several units between a fold's fit and the refit,
        # and the calibration learnt on one would not hold for the other. So each feature's
        # constant is set, as logistic regression would, so that its function predicts as many
        # positives as there are (a few Newton steps on one number per feature).
        shift = np.zeros((len(rows), 1))
        for _ in range(_NEWTON_STEPS):
            p = special.expit(log_odds + shift)
            excess = (rows * p).sum(axis=1, keepdims=True) - positives.sum(axis=1, keepdims=True)
            slope = (rows * p * (1 - p)).sum(axis=1, keepdims=True)
            step = excess / np.maximum(slope, 1e-12)
            shift -= step
            if np.abs(step).max() < 1e-9:
                break
        return log_odds + shift


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
