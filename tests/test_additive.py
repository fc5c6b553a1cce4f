"""The additive table's locator finds exactly what a binary search finds, for every value:
inside the grid, on its points, beyond its ends, with repeated points and constant features."""

from __future__ import annotations

import numpy as np
import pytest

from santander.additive import Locator


def searchsorted_index(grid: np.ndarray, X: np.ndarray) -> np.ndarray:
    n_features, n_points = grid.shape
    index = np.empty(X.shape, dtype=np.int64)
    for j in range(n_features):
        clipped = np.clip(X[:, j], grid[j, 0], grid[j, -1])
        at_or_below = np.searchsorted(grid[j], clipped, side="right") - 1
        index[:, j] = np.clip(at_or_below, 0, n_points - 2) + j * n_points
    return index


@pytest.mark.parametrize("trial", range(24))
def test_the_locator_agrees_with_a_binary_search(trial):
    rng = np.random.default_rng(trial)
    n_features, n_points = int(rng.integers(1, 30)), int(rng.integers(2, 300))
    grid = np.sort(rng.normal(size=(n_features, n_points)) * rng.uniform(1e-3, 1e3), axis=1)
    if trial % 3 == 0:
        grid = np.sort(np.round(grid, 1), axis=1)          # repeated points
    if trial % 4 == 0:
        grid[0] = grid[0, 0]                                # a constant feature
    X = np.concatenate([rng.normal(size=(500, n_features)) * rng.uniform(1e-3, 1e3),
                        grid.T[rng.integers(0, n_points, 200)],     # exactly on grid points
                        np.nextafter(grid.T[rng.integers(0, n_points, 100)], np.inf),
                        np.full((2, n_features), 1e30), np.full((2, n_features), -1e30)])
    index, alpha = Locator(grid)(X)
    np.testing.assert_array_equal(index, searchsorted_index(grid, X))
    assert ((alpha >= 0) & (alpha <= 1)).all()
