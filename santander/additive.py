"""Additive log-odds tables: how per-feature models are served.

An additive model scores a row as `intercept + sum_j f_j(x_j)`. Here every f_j is piecewise
linear between grid points (per feature, increasing), constant beyond the first and last
point. Plain arrays, so an artifact is an `.npz` that loads without pickle and without any
training code, and each feature's contribution to a score is exact.

The training side (santander/training/estimators.py) fits its models directly in this form, so what
cross-validation scores is exactly what the server answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_BLOCK_ROWS = 16_384     # rows located at a time: keeps the (rows x features) scratch small
_BUCKETS = 1024          # per feature, for Locator's first guess


class Locator:
    """Finds, for each value X[i, j], the flat index into grid (F, P) of the last grid point at
    or below it (as searchsorted(side="right") - 1 would), and how far (0..1) it lies towards
    the next point. Built once per grid, so a lone row or a small batch pays only the lookup.

    Each feature's range is cut into `_BUCKETS` equal buckets. A value's bucket says which
    grid point to start from (the last one whose own bucket is lower), and a few steps from
    distinct value to distinct value finish the search: a handful of vectorised gathers instead
    of a binary search per value (searchsorted over all features' points costs ~80 ns per
    value here, most of a 64-row batch's time). Bucketing is the same monotone arithmetic for
    grid points and values, so the result is exact.
    """

    def __init__(self, grid: np.ndarray):
        n_features, self.n_points = grid.shape
        self.low, self.high = grid[:, 0], grid[:, -1]
        span = np.where(self.high > self.low, self.high - self.low, 1.0)
        self.scale = _BUCKETS / span
        self.first = np.arange(n_features) * self.n_points
        self.flat_grid = grid.ravel()
        self.bucket_offset = np.arange(n_features) * _BUCKETS
        start = np.empty((n_features, _BUCKETS), dtype=np.int64)
        next_value = np.empty(grid.shape, dtype=np.int64)
        steps = 1
        for j in range(n_features):
            g = grid[j]
            point_bucket = self._bucket(g, j)
            # The last index holding each point's value, and the last one of the next value up.
            last_of_value = np.searchsorted(g, g, side="right") - 1
            next_value[j] = last_of_value[np.minimum(last_of_value + 1, self.n_points - 1)]
            # Bucket b starts from the last point whose bucket is below b; the buckets no point
            # lies below start from the first value (every value is at least the grid's low).
            below = np.searchsorted(point_bucket, np.arange(_BUCKETS), side="left") - 1
            start[j] = last_of_value[np.maximum(below, 0)]
            # Steps needed: the most distinct values sharing one bucket.
            steps = max(steps, int(np.bincount(self._bucket(np.unique(g), j)).max()))
        self.steps = steps
        self.next_flat = (next_value + self.first[:, None]).ravel()
        self.start_flat = (start + self.first[:, None]).ravel()

    def _bucket(self, values: np.ndarray, feature: int) -> np.ndarray:
        # The same arithmetic as __call__'s, so a value and a grid point equal to it share a
        # bucket, and a larger value never gets a lower one.
        bucket = ((values - self.low[feature]) * self.scale[feature]).astype(np.int64)
        return np.minimum(bucket, _BUCKETS - 1)

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        clipped = np.clip(X, self.low, self.high)
        bucket = np.minimum(((clipped - self.low) * self.scale).astype(np.int64), _BUCKETS - 1)
        index = self.start_flat[bucket + self.bucket_offset]
        for _ in range(self.steps):
            ahead = self.next_flat[index]
            index = np.where(self.flat_grid[ahead] <= clipped, ahead, index)
        index = np.minimum(index - self.first, self.n_points - 2) + self.first
        left, right = self.flat_grid[index], self.flat_grid[index + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(right > left, (clipped - left) / (right - left), 0.0)
        return index, np.clip(alpha, 0.0, 1.0)


def locate(grid: np.ndarray, X: np.ndarray, index_dtype=np.int64, alpha_dtype=np.float64
           ) -> tuple[np.ndarray, np.ndarray]:
    """Locator(grid)(X) for many rows: a block at a time, compactly stored (training uses
    int32 and float32 for its (rows x features) arrays). NaN is not expected: the codec
    refuses it before a model sees a row."""
    X = np.asarray(X, dtype=np.float64)
    locator = Locator(grid)
    index = np.empty(X.shape, dtype=index_dtype)
    alpha = np.empty(X.shape, dtype=alpha_dtype)
    for start in range(0, len(X), _BLOCK_ROWS):
        block = slice(start, start + _BLOCK_ROWS)
        index[block], alpha[block] = locator(X[block])
    return index, alpha


def interpolate(values: np.ndarray, index: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per (row, feature): the piecewise-linear value at the located position."""
    flat = values.ravel()
    lower = flat[index]
    return lower + alpha * (flat[index + 1] - lower)


@dataclass(frozen=True)
class AdditiveTable:
    grid: np.ndarray        # (F, P) per feature, non-decreasing x values
    values: np.ndarray      # (F, P) log-odds contribution at each grid point
    intercept: float

    def __post_init__(self):
        if self.grid.ndim != 2 or self.grid.shape != self.values.shape or self.grid.shape[1] < 2:
            raise ValueError(f"grid {self.grid.shape} and values {self.values.shape} must be "
                             "the same (features, points) shape with at least 2 points")
        if not (np.all(np.isfinite(self.grid)) and np.all(np.isfinite(self.values))
                and np.isfinite(self.intercept)):
            raise ValueError("additive table holds a non-finite number")
        if np.any(np.diff(self.grid, axis=1) < 0):
            raise ValueError("additive table grid is not sorted per feature")
        object.__setattr__(self, "_locator", Locator(self.grid))

    @property
    def n_features(self) -> int:
        return self.grid.shape[0]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, F): each feature's exact contribution to each row's log-odds."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) <= _BLOCK_ROWS:
            index, alpha = self._locator(X)
        else:
            index, alpha = locate(self.grid, X)
        return interpolate(self.values, index, alpha)

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        # A block of rows at a time: the (rows x features) scratch stays a few tens of MB
        # however many rows are scored.
        X = np.asarray(X)
        out = np.empty(len(X))
        for start in range(0, len(X), _BLOCK_ROWS):
            block = np.asarray(X[start:start + _BLOCK_ROWS], dtype=np.float64)
            out[start:start + len(block)] = interpolate(self.values,
                                                        *self._locator(block)).sum(axis=1)
        return self.intercept + out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        positive = 1.0 / (1.0 + np.exp(-self.log_odds(X)))
        proba = np.empty((len(positive), 2))
        proba[:, 0] = 1.0 - positive
        proba[:, 1] = positive
        return proba

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, grid=self.grid, values=self.values,
                     intercept=np.array(self.intercept))

    @classmethod
    def load(cls, path: Path) -> "AdditiveTable":
        with np.load(path, allow_pickle=False) as data:
            return cls(grid=data["grid"].astype(np.float64),
                       values=data["values"].astype(np.float64),
                       intercept=float(data["intercept"]))
