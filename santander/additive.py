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


class Locator:
    """Finds, for each value X[i, j], the flat index into grid (F, P) of the grid point at or
    below it, and how far (0..1) it lies towards the next point. Built once per grid: the
    search array is what a lone row would otherwise spend most of its time rebuilding."""

    def __init__(self, grid: np.ndarray):
        n_features, self.n_points = grid.shape
        self.low, high = grid[:, 0], grid[:, -1]
        self.span = np.where(high > self.low, high - self.low, 1.0)
        self.high = high
        # Every feature's grid scaled into [2j, 2j + 1] and laid end to end: one sorted
        # array, so one searchsorted places a whole block of rows (a loop over 200 features
        # costs ~10x).
        self.offset = 2.0 * np.arange(n_features)
        self.first = np.arange(n_features) * self.n_points
        self.flat_grid = grid.ravel()
        self.flat_scaled = ((grid - self.low[:, None]) / self.span[:, None]
                            + self.offset[:, None]).ravel()

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        clipped = np.clip(X, self.low, self.high)
        position = np.searchsorted(self.flat_scaled, (clipped - self.low) / self.span
                                   + self.offset, side="right")
        index = np.clip(position - 1 - self.first, 0, self.n_points - 2) + self.first
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
