"""The per-feature estimators: counts per fold, smoothing chosen per feature, a calibrated sum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from santander.schema import FEATURES
from santander.training.data.synthetic import generate
from santander.training.estimators import BinnedCounts, HistogramNB, SplineAdditive, feature_grid

from conftest import assert_calibrated


def test_feature_grid_spans_each_feature_and_puts_points_in_its_tails():
    X = np.random.default_rng(0).normal(size=(20_000, 2))
    X[:, 1] = 3.0                                             # a constant feature
    grid = feature_grid(X, 257)
    assert grid.shape == (2, 257)
    assert np.all(np.diff(grid, axis=1) >= 0)
    assert grid[0, 0] == X[:, 0].min() and grid[0, -1] == X[:, 0].max()
    assert np.all(grid[1] == 3.0)
    # Quantiles alone would put ~1 point in the outer 0.5% on each side; even spacing adds more.
    tail = np.quantile(X[:, 0], [0.005, 0.995])
    assert np.sum(grid[0] < tail[0]) >= 5 and np.sum(grid[0] > tail[1]) >= 5


def test_binned_counts_are_stratified_folds_of_every_row():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5_003, 3))
    target = (rng.random(5_003) < 0.1).astype(float)
    counts = BinnedCounts(X, target, bins=32, folds=5)
    assert counts.rows.shape == (5, 3, 32)
    assert np.all(counts.rows.sum(axis=(0, 2)) == 5_003)           # every row, per feature
    assert counts.positives.sum(axis=(0, 2))[0] == target.sum()
    per_fold = counts.positives[:, 0].sum(axis=1)
    assert per_fold.max() - per_fold.min() <= 1                       # stratified
    rows, positives = counts.without(2)
    assert rows[0].sum() == 5_003 - counts.rows[2, 0].sum()
    table = np.arange(3 * 32, dtype=float).reshape(3, 32)
    looked_up = counts.lookup(table, np.arange(10))
    assert np.array_equal(looked_up, table[np.arange(3)[None, :], counts.bin[:10]])
    assert counts.bin.min() >= 0 and counts.bin.max() <= 31


@pytest.fixture(scope="module")
def wiggly_and_null():
    """Feature 0: a strong sine effect on the log-odds; features 1-3: none at all."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40_000, 4))
    log_odds = -2.2 + 1.2 * np.sin(3 * X[:, 0])
    y = (rng.random(len(X)) < special.expit(log_odds)).astype(int)
    return X, y


@pytest.mark.parametrize("estimator", [SplineAdditive(n_knots=24), HistogramNB()],
                         ids=["spline", "histogram"])
def test_smoothing_is_chosen_per_feature(estimator, wiggly_and_null):
    X, y = wiggly_and_null
    model = estimator.fit(X, y)
    # The sine keeps less smoothing than any null feature...
    assert all(model.settings_[0] < setting for setting in model.settings_[1:])
    # ...and is recovered, while the null features come out nearly flat.
    x = np.linspace(-1.5, 1.5, 61)
    grid = np.zeros((61, 4))
    grid[:, 0] = x
    recovered = model.table_.contributions(grid)[:, 0]
    truth = 1.2 * np.sin(3 * x)
    assert np.corrcoef(recovered, truth)[0, 1] > 0.97
    spread = np.ptp(model.table_.contributions(X[:5_000]), axis=0)
    assert spread[0] > 2.0 and spread[1:].max() < 0.6


@pytest.mark.parametrize("estimator", [SplineAdditive(n_knots=12), HistogramNB()],
                         ids=["spline", "histogram"])
def test_the_sum_of_200_functions_is_calibrated(estimator):
    train, fresh = generate(20_000, seed=5), generate(20_000, seed=6)
    X, y = train[list(FEATURES)].to_numpy(), train["target"].to_numpy()
    model = estimator.fit(X, y)
    # Each fold's own prior is taken out before its functions are summed: with one prior for
    # all folds, the out-of-fold sums carry 200 times each fold's rate error and the slope
    # falls to ~0.45.
    assert 0.8 < model.slope_ < 1.15
    proba = model.predict_proba(fresh[list(FEATURES)].to_numpy())[:, 1]
    # Binomial error on ~2,000 rows per decile, plus some room for the model's own error.
    assert_calibrated(proba, fresh["target"].to_numpy(), sigmas=3, slack=0.02)
