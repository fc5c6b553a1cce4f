"""A deterministic synthetic stand-in for the Santander training set.

Model of the data (what the public write-ups say of the real set): features independent given
the target, each weakly predictive. Per feature and class, a value is

    loc_c + scale_c(side) * Z,   Z ~ generalised normal with shape beta, unit variance,

clipped to the published [min, max] and rounded to 4 decimals like the real file. The
parameters come from the published figures:

* beta matches the marginal ratio (q99 - q01) / std (real features have lighter tails than a
  normal: the ratio is about 0.93 of a normal's);
* each class's 1% and 99% quantiles fix that class's location and total width, so the
  class-conditional shift and spread are the published ones;
* one skew ratio (right scale / left scale, shared by both classes) makes the mixture's
  mean equal the published mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from santander.data.schema import FEATURES, ID_COLUMN, REAL_POSITIVE_RATE, TARGET_COLUMN
from santander.data.stats import load_feature_table

_CHUNK_ROWS = 20_000  # fixed, so the output depends only on (rows, seed)


def _unit_gennorm(beta: float) -> tuple[float, float, float]:
    """Scale making gennorm(beta) unit-variance, its 99% quantile and E[Z; Z > 0] at that scale."""
    sd = np.sqrt(special.gamma(3 / beta) / special.gamma(1 / beta))
    q99 = stats.gennorm.ppf(0.99, beta) / sd
    half_abs_mean = special.gamma(2 / beta) / special.gamma(1 / beta) / sd / 2
    return sd, q99, half_abs_mean


def _beta_for_ratio(ratio: float) -> float:
    """Shape whose unit-variance 1%-99% width equals `ratio`."""
    def width(beta: float) -> float:
        return 2 * _unit_gennorm(beta)[1] - ratio

    lo, hi = 1.0, 20.0
    if width(lo) <= 0:
        return lo
    if width(hi) >= 0:
        return hi
    return float(optimize.brentq(width, lo, hi, xtol=1e-6))


@dataclass(frozen=True)
class FeatureParameters:
    beta: np.ndarray      # (200,)
    gennorm_sd: np.ndarray
    loc: np.ndarray       # (2, 200): class 0, class 1
    left: np.ndarray      # (2, 200)
    right: np.ndarray     # (2, 200)
    low: np.ndarray       # (200,)
    high: np.ndarray      # (200,)


def fit_parameters(table: pd.DataFrame | None = None,
                   positive_rate: float = REAL_POSITIVE_RATE) -> FeatureParameters:
    table = load_feature_table() if table is None else table
    table = table.loc[list(FEATURES)]
    ratio = ((table["q99"] - table["q01"]) / table["std"]).to_numpy()
    beta = np.array([_beta_for_ratio(r) for r in ratio])
    unit = np.array([_unit_gennorm(b) for b in beta])
    sd, z99, half = unit[:, 0], unit[:, 1], unit[:, 2]

    q01 = np.stack([table["q01_0"].to_numpy(), table["q01_1"].to_numpy()])
    q99 = np.stack([table["q99_0"].to_numpy(), table["q99_1"].to_numpy()])
    width = (q99 - q01) / z99                # left + right scale, per class
    weights = np.array([[1 - positive_rate], [positive_rate]])
    # Mixture mean = A + B * (z99 + (r - 1) * half) / (1 + r); solve for the skew ratio r.
    a = (weights * q01).sum(axis=0)
    b = (weights * width).sum(axis=0)
    t = (table["mean"].to_numpy() - a) / b
    skew = np.clip((t + half - z99) / (half - t), 0.5, 2.0)
    left = width / (1 + skew)
    right = width * skew / (1 + skew)
    loc = q01 + left * z99
    return FeatureParameters(beta=beta, gennorm_sd=sd, loc=loc, left=left, right=right,
                             low=table["min"].to_numpy(), high=table["max"].to_numpy())


def generate(rows: int, seed: int = 0, positive_rate: float = REAL_POSITIVE_RATE,
             params: FeatureParameters | None = None) -> pd.DataFrame:
    """`rows` rows with the real file's columns; the same (rows, seed) gives the same frame."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    params = fit_parameters(positive_rate=positive_rate) if params is None else params
    rng = np.random.default_rng(seed)
    target = np.zeros(rows, dtype=np.int64)
    target[: int(round(rows * positive_rate))] = 1
    rng.shuffle(target)

    values = np.empty((rows, len(FEATURES)), dtype=np.float64)
    shape = 1.0 / params.beta
    for start in range(0, rows, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, rows)
        n = stop - start
        # |Z|^beta ~ Gamma(1/beta): cheap exact sampling of the generalised normal.
        magnitude = rng.gamma(shape, size=(n, len(FEATURES))) ** shape / params.gennorm_sd
        positive_side = rng.random((n, len(FEATURES))) < 0.5
        cls = target[start:stop, None]
        loc = np.where(cls == 1, params.loc[1], params.loc[0])
        scale = np.where(positive_side,
                         np.where(cls == 1, params.right[1], params.right[0]),
                         -np.where(cls == 1, params.left[1], params.left[0]))
        values[start:stop] = np.clip(loc + scale * magnitude, params.low, params.high)
    frame = pd.DataFrame(np.round(values, 4), columns=list(FEATURES))
    frame.insert(0, TARGET_COLUMN, target)
    frame.insert(0, ID_COLUMN, [f"train_{i}" for i in range(rows)])
    return frame
