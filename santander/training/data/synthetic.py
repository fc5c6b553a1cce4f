"""Deterministic synthetic stand-ins for the Santander training set, with a known posterior.

Model of the data (what the public write-ups say of the real set): the 200 features are
independent given the target, each weakly predictive, with non-monotone per-feature effects.
Each feature's two class-conditional densities live on a grid of cells aligned with the
4-decimal lattice the real file is written on, so

* a draw is a cell (inverse CDF) and then one lattice value inside it: rounding is exact;
* the Bayes-optimal posterior of any row is exact: the prior log-odds plus, per feature, the
  log ratio of the two classes' cell probabilities (`GridModel.posterior`).

Two generators share that machinery:

`santander_like()` — the built-in data. Class 0 is a skewed generalised normal fitted to the
published figures (its 1%/99% quantiles, the marginal spread and mean). Class 1 is class 0
tilted by a per-feature log-odds function with three parts, one global strength each:

* a body shift, saturating in the tails (its sign and relative size per feature from the
  published class-wise quantile midpoints);
* a curvature (sign and size from the published class-wise quantile widths);
* two narrow bumps per feature at fixed random places (what trees and per-feature models can
  find and Gaussian naive Bayes cannot).

Two smooth tail ramps per feature are then solved so that class 1's published 1% and 99%
quantiles hold exactly. The three strengths are calibrated (`CALIBRATION`) so that 5-fold CV
on 200,000 rows gives the published real-data ROC AUCs of logistic regression, Gaussian naive
Bayes and plain LightGBM; BENCHMARKS.md has the measured figures.

`alternative()` — a second generator, never used for tuning: bimodal class-0 densities and
periodic (sine) plus ramp effects, to check that model quality does not fit one generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from santander.config import DEFAULT_ROWS, SEED, built_in_data_path
from santander.schema import FEATURES, ID_COLUMN, REAL_POSITIVE_RATE, TARGET_COLUMN
from santander.training.data.stats import load_feature_table

LATTICE = 10_000           # values are written with 4 decimals
MAX_CELLS = 2_048          # per feature; cells are whole numbers of lattice steps
_CHUNK_ROWS = 20_000       # fixed, so the output depends only on (rows, seed)
_SHAPE_SEED = 2019         # where the bumps sit: part of the model, not of a draw

# Global strengths of the three parts of the class-1 tilt, in log-odds (see module doc).
# Calibrated by bench/quality.py --calibrate against the published AUCs.
CALIBRATION = {"shift": 1.94, "curvature": 0.0466, "bumps": 0.178}


@dataclass(frozen=True)
class GridModel:
    """Per feature, both classes' probabilities over cells of lattice values."""

    start: np.ndarray          # (F,) lattice index of the first value of cell 0
    width: np.ndarray          # (F,) lattice values per cell
    top: np.ndarray            # (F,) lattice index of the largest value
    log_prob: np.ndarray       # (2, F, K) log probability of each cell; -inf past the end
    positive_rate: float

    @property
    def log_ratio(self) -> np.ndarray:
        """(F, K) per-feature log-odds contribution of each cell (0 where a cell is empty)."""
        with np.errstate(invalid="ignore"):
            ratio = self.log_prob[1] - self.log_prob[0]
        return np.where(np.isfinite(ratio), ratio, 0.0)

    def cells(self, X: np.ndarray) -> np.ndarray:
        lattice = np.rint(np.asarray(X, dtype=np.float64) * LATTICE)
        lattice = np.clip(lattice, self.start, self.top).astype(np.int64)
        return (lattice - self.start) // self.width

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """Exact Bayes log-odds of each row of X (n, F)."""
        cells = self.cells(X)
        prior = np.log(self.positive_rate / (1 - self.positive_rate))
        ratio = self.log_ratio
        features = np.arange(ratio.shape[0])
        return prior + ratio[features, cells].sum(axis=1)

    def posterior(self, X: np.ndarray) -> np.ndarray:
        """P(target = 1 | x) for each row: the Bayes-optimal score."""
        return special.expit(self.log_odds(X))

    def sample(self, rows: int, seed: int = 0) -> pd.DataFrame:
        """`rows` rows with the real file's columns; the same (rows, seed) gives the same frame."""
        if rows < 1:
            raise ValueError("rows must be at least 1")
        rng = np.random.default_rng(seed)
        target = np.zeros(rows, dtype=np.int64)
        target[: int(round(rows * self.positive_rate))] = 1
        rng.shuffle(target)
        n_features = self.log_prob.shape[1]
        cdf = np.cumsum(np.exp(self.log_prob), axis=2)
        cdf = cdf / cdf[:, :, -1:]
        last_cell = (self.top - self.start) // self.width
        lattice = np.empty((rows, n_features), dtype=np.int64)
        for begin in range(0, rows, _CHUNK_ROWS):
            end = min(begin + _CHUNK_ROWS, rows)
            u_cell = rng.random((end - begin, n_features))
            u_value = rng.random((end - begin, n_features))
            cell = np.empty((end - begin, n_features), dtype=np.int64)
            for c in (0, 1):
                mine = np.flatnonzero(target[begin:end] == c)
                for j in range(n_features):
                    cell[mine, j] = np.searchsorted(cdf[c, j], u_cell[mine, j], side="right")
            cell = np.minimum(cell, last_cell)
            first = self.start + cell * self.width
            size = np.minimum(self.width, self.top + 1 - first)
            lattice[begin:end] = first + np.floor(u_value * size).astype(np.int64)
        frame = pd.DataFrame(lattice / LATTICE, columns=list(FEATURES))
        frame.insert(0, TARGET_COLUMN, target)
        frame.insert(0, ID_COLUMN, [f"train_{i}" for i in range(rows)])
        return frame


@dataclass(frozen=True)
class _Cells:
    """Per feature, cells of whole lattice steps over [low, high] (padded to MAX_CELLS)."""

    start: np.ndarray       # (F,) lattice index of the first value
    width: np.ndarray       # (F,) lattice values per cell
    top: np.ndarray         # (F,) lattice index of the last value
    lower: np.ndarray       # (F, K) each cell's edges and centre, in feature units
    upper: np.ndarray
    centre: np.ndarray
    valid: np.ndarray       # (F, K) False for padding past the last value

    @classmethod
    def over(cls, low: np.ndarray, high: np.ndarray) -> "_Cells":
        start = np.rint(low * LATTICE).astype(np.int64)
        top = np.rint(high * LATTICE).astype(np.int64)
        width = np.maximum(1, -(-(top - start + 1) // MAX_CELLS))
        first = start[:, None] + np.arange(MAX_CELLS) * width[:, None]
        valid = first <= top[:, None]
        first = np.minimum(first, top[:, None] + 1)          # padding: empty, at the top
        last = np.maximum(np.minimum(first + width[:, None] - 1, top[:, None]), first - 1)
        lower, upper = (first - 0.5) / LATTICE, (last + 0.5) / LATTICE
        return cls(start, width, top, lower, upper, (lower + upper) / 2, valid)

    def model(self, log0: np.ndarray, log1: np.ndarray, positive_rate: float) -> GridModel:
        return GridModel(start=self.start, width=self.width, top=self.top,
                         log_prob=np.stack([log0, log1]), positive_rate=positive_rate)


def _normalise(log_mass: np.ndarray, valid: np.ndarray) -> np.ndarray:
    log_mass = np.where(valid, log_mass, -np.inf)
    peak = log_mass.max(axis=-1, keepdims=True)
    return log_mass - (peak + np.log(np.exp(log_mass - peak).sum(axis=-1, keepdims=True)))


def _cdf_at(log_prob: np.ndarray, cells: _Cells, x: np.ndarray) -> np.ndarray:
    """Per feature, the CDF at x, linear inside a cell (the lattice values are uniform there)."""
    prob = np.exp(log_prob)
    cum = np.cumsum(prob, axis=-1)
    # The last cell starting below x holds it (cells are sorted; padding starts at the top).
    k = (cells.lower < x[:, None]).sum(axis=1) - 1
    rows = np.arange(len(x))
    if np.any(k < 0):
        raise ValueError("a quantile lies below its feature's range")
    lower, upper = cells.lower[rows, k], cells.upper[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.clip(np.nan_to_num((x - lower) / (upper - lower)), 0.0, 1.0)
    return cum[rows, k] - prob[rows, k] * (1.0 - inside)


# --- the built-in generator ------------------------------------------------------------------

def _unit_gennorm(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale making gennorm(beta) unit-variance, and its 99% quantile at that scale."""
    sd = np.sqrt(special.gamma(3 / beta) / special.gamma(1 / beta))
    return sd, stats.gennorm.ppf(0.99, beta) / sd


def _beta_for_ratio(ratio: float) -> float:
    """Shape whose unit-variance 1%-99% width equals `ratio`."""
    def width(beta: float) -> float:
        return 2 * float(_unit_gennorm(np.array(beta))[1]) - ratio

    lo, hi = 1.0, 20.0
    if width(lo) <= 0:
        return lo
    if width(hi) >= 0:
        return hi
    return float(optimize.brentq(width, lo, hi, xtol=1e-6))


def _skew_for_mean(table: pd.DataFrame, beta: np.ndarray, positive_rate: float) -> np.ndarray:
    """Skew making a two-class mixture of skewed generalised normals through each class's
    published quantiles have the published mean (the previous generator's closed form)."""
    sd, z99 = _unit_gennorm(beta)
    half = special.gamma(2 / beta) / special.gamma(1 / beta) / sd / 2    # E[Z; Z > 0]
    q01 = np.stack([table["q01_0"].to_numpy(), table["q01_1"].to_numpy()])
    q99 = np.stack([table["q99_0"].to_numpy(), table["q99_1"].to_numpy()])
    weights = np.array([[1 - positive_rate], [positive_rate]])
    # Mixture mean = A + B * (z99 + (r - 1) * half) / (1 + r); solve for the skew ratio r.
    a = (weights * q01).sum(axis=0)
    b = (weights * (q99 - q01) / z99).sum(axis=0)
    t = (table["mean"].to_numpy() - a) / b
    return np.clip((t + half - z99) / (half - t), 0.5, 2.0)


def _class0_log_prob(table: pd.DataFrame, skew: np.ndarray, cells: _Cells,
                     beta: np.ndarray) -> np.ndarray:
    """Cell probabilities of a skewed generalised normal through class 0's 1% and 99% quantiles."""
    sd, z99 = _unit_gennorm(beta)
    width = (table["q99_0"].to_numpy() - table["q01_0"].to_numpy()) / z99
    left = width / (1 + skew)
    right = width * skew / (1 + skew)
    loc = table["q01_0"].to_numpy() + left * z99

    def cdf(x: np.ndarray) -> np.ndarray:
        below = x < loc[:, None]
        scale = np.where(below, left[:, None], right[:, None])
        u = (x - loc[:, None]) * sd[:, None] / scale
        b = beta[:, None]
        return 0.5 + np.sign(u) / 2 * special.gammainc(1 / b, np.abs(u) ** b)

    mass = np.clip(cdf(cells.upper) - cdf(cells.lower), 1e-300, None)
    return _normalise(np.log(mass), cells.valid)


def _pin_quantiles(base: np.ndarray, cells: _Cells, q01: np.ndarray, q99: np.ndarray,
                   std: np.ndarray) -> np.ndarray:
    """`base` times exp(t_left * left step + t_right * right step), normalised, with the two
    strengths solved so that the 1% and 99% quantiles are q01 and q99. The steps are smooth
    (a quarter std wide) and sit at the quantiles, so the body of the density is left as is."""
    left_step = _step(cells.centre, q01, 0.25 * std, -1)
    right_step = _step(cells.centre, q99, 0.25 * std, 1)
    t_left = np.zeros(len(q01))
    t_right = np.zeros(len(q01))
    # Each step lifts its own tail only, so a logit update per tail converges in a few rounds.
    for _ in range(25):
        log_prob = _normalise(base + t_left[:, None] * left_step + t_right[:, None] * right_step,
                              cells.valid)
        below = np.clip(_cdf_at(log_prob, cells, q01), 1e-9, 1 - 1e-9)
        above = np.clip(1 - _cdf_at(log_prob, cells, q99), 1e-9, 1 - 1e-9)
        t_left += special.logit(0.01) - special.logit(below)
        t_right += special.logit(0.01) - special.logit(above)
        if max(np.abs(below - 0.01).max(), np.abs(above - 0.01).max()) < 1e-5:
            break
    return log_prob


def _step(x: np.ndarray, at: np.ndarray, scale: np.ndarray, side: int) -> np.ndarray:
    """A smooth step from 0 to 1 at `at` (per feature), rising towards `side` (-1 left, +1 right)."""
    return special.expit(side * (x - at[:, None]) / scale[:, None])


@lru_cache(maxsize=4)
def santander_like(shift: float = CALIBRATION["shift"],
                   curvature: float = CALIBRATION["curvature"],
                   bumps: float = CALIBRATION["bumps"],
                   positive_rate: float = REAL_POSITIVE_RATE) -> GridModel:
    """The built-in data's model, matched to the published statistics (see module doc)."""
    table = load_feature_table().loc[list(FEATURES)]
    std = table["std"].to_numpy()
    mean = table["mean"].to_numpy()
    cells = _Cells.over(table["min"].to_numpy(), table["max"].to_numpy())
    ratio = ((table["q99"] - table["q01"]) / table["std"]).to_numpy()
    beta = np.array([_beta_for_ratio(r) for r in ratio])
    mid0 = (table["q01_0"] + table["q99_0"]).to_numpy() / 2
    mid1 = (table["q01_1"] + table["q99_1"]).to_numpy() / 2
    w0 = (table["q99_0"] - table["q01_0"]).to_numpy()
    w1 = (table["q99_1"] - table["q01_1"]).to_numpy()
    direction = (mid1 - mid0) / std                      # ~0.06 std: sign and relative size
    spread = np.log(w1 / w0)                             # ~+0.01: class 1 a little wider
    z = (cells.centre - mid0[:, None]) / std[:, None]

    rng = np.random.default_rng(_SHAPE_SEED)
    n = len(std)
    at = rng.uniform(-1.8, 1.8, (n, 2))
    sigma = rng.uniform(0.12, 0.35, (n, 2))
    height = rng.choice([-1.0, 1.0], (n, 2)) * rng.uniform(0.5, 1.0, (n, 2))
    body = (shift * direction[:, None] * 2.0 * np.tanh(z / 2.0)
            + curvature * (spread / spread.std())[:, None] * 4.0 * np.tanh(z ** 2 / 4.0)
            + bumps * sum(height[:, i, None] * np.exp(-0.5 * ((z - at[:, i, None])
                                                              / sigma[:, i, None]) ** 2)
                          for i in range(2)))
    # The mixture's mean is matched through class 0's skew (right scale / left scale; its
    # quantiles stay fixed). Start from the closed form for two skewed generalised normals,
    # then correct a few rounds for class 1's actual shape: a larger skew moves class 0's
    # location left, so its mean falls, by ~0.75 std per unit of log skew.
    skew = _skew_for_mean(table, beta, positive_rate)
    for _ in range(3):
        base = _class0_log_prob(table, skew, cells, beta)
        # Truncating to the published [min, max] moves a quantile close to a bound: class 0's
        # tails are pinned the same way as class 1's.
        log0 = _pin_quantiles(base, cells, table["q01_0"].to_numpy(),
                              table["q99_0"].to_numpy(), std)
        log1 = _pin_quantiles(base + body, cells, table["q01_1"].to_numpy(),
                              table["q99_1"].to_numpy(), std)
        mix = (1 - positive_rate) * np.exp(log0) + positive_rate * np.exp(log1)
        error = ((mix * cells.centre).sum(axis=1) - mean) / std
        skew = np.clip(skew * np.exp(error / 0.75), 0.4, 2.5)
    return cells.model(log0, log1, positive_rate)


# --- the second generator, for checking that quality does not fit one generator -------------

@lru_cache(maxsize=2)
def alternative(strength: float = 0.12, positive_rate: float = REAL_POSITIVE_RATE) -> GridModel:
    """Bimodal class-0 densities; sine-wave and ramp effects. Not matched to any statistics."""
    rng = np.random.default_rng(7)
    n = len(FEATURES)
    low, high = np.full(n, -6.0), np.full(n, 6.0)
    cells = _Cells.over(low, high)
    centre = cells.centre
    gap = rng.uniform(0.5, 1.5, n)[:, None]
    weight = rng.uniform(0.2, 0.8, n)[:, None]
    log0 = _normalise(np.log(weight * stats.norm.pdf(centre, -gap, 0.8)
                             + (1 - weight) * stats.norm.pdf(centre, gap, 0.8) + 1e-300),
                      cells.valid)
    period = rng.uniform(1.0, 3.0, n)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    slope = rng.normal(0.0, 0.5, n)[:, None]
    knee = rng.uniform(-1.0, 1.0, n)[:, None]
    scale = rng.exponential(1.0, n)[:, None]
    effect = strength * scale * (np.sin(2 * np.pi * centre / period + phase)
                                 + slope * np.maximum(centre - knee, 0.0))
    return cells.model(log0, _normalise(log0 + effect, cells.valid), positive_rate)


GENERATORS = {"santander": santander_like, "alternative": alternative}


def generate(rows: int, seed: int = 0, positive_rate: float = REAL_POSITIVE_RATE,
             generator: str = "santander") -> pd.DataFrame:
    """`rows` rows with the real file's columns; the same (rows, seed) gives the same frame."""
    return GENERATORS[generator](positive_rate=positive_rate).sample(rows, seed)


def built_in_data(rows: int = DEFAULT_ROWS, seed: int = SEED) -> Path:
    """The built-in data file of `rows` rows drawn with `seed`, written if it is not there yet
    (named by both: config.built_in_data_path, the file `make data ROWS=N` writes too)."""
    from santander.frames import write_frame
    path = built_in_data_path(rows, seed)
    if not path.exists():
        write_frame(generate(rows, seed=seed), path)
    return path
