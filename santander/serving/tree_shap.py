"""XGBoost's TreeSHAP contributions, looked up in tables made at load.

`pred_contribs` costs ~1-2 ms for one row of a 400-tree depth-4 model, most of it per-path
work that does not depend on the row. What does depend on it is little: on each root-to-leaf
path, which of the path's features the row agrees with. So the tables hold, for every path and
every such pattern, each feature's share of that leaf; scoring a row finds its pattern on
every path and adds up the shares (`bench/serving.py` measures both in-process).

The numbers are XGBoost's own (path-dependent TreeSHAP, Lundberg et al. 2018): a leaf of value
v reached by a path whose distinct features are U contributes to feature j in U

    phi_j = v * (o_j - z_j) * sum over S in U \\ {j} of  |S|! (|U|-|S|-1)! / |U|!
                                                   * prod_{k in S} o_k * prod_{k not in S, j} z_k

where z_k is the product of the cover fractions (child's cover over parent's) at the path's
splits on feature k, and o_k is 1 when the row goes the path's way at every one of them, else
0. The bias is the cover-weighted mean leaf value plus the base margin. Every path is given
`depth` slots (the trees are complete, santander/serving/trees.py): a slot no feature fills is
a player with z = o = 1, who changes no one's value, so its presence leaves every share as it
is. A padded split's never-taken side has cover 0, so its paths give 0.

`from_booster` builds the tables and checks them against `pred_contribs` on probe rows; None
when the model cannot be laid out, the tables would be too big, or the check fails: the caller
keeps XGBoost.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from santander.serving.trees import HeapForest, probe_rows, read_forest

ROWS_PER_LOOKUP = 32              # rows looked up at once: bounds the working memory
MAX_TABLE_VALUES = 8_000_000      # 32 MB as float32: 400 trees of depth 4 take 0.4 M
PROBE_ROWS = 64
SHARES_CHUNK_VALUES = 2_000_000   # trees at a time when the tables are made
TOLERANCE = 1e-4                  # XGBoost sums the shares in float32


class TreeShapTables:
    def __init__(self, forest: HeapForest):
        depth, n_trees = forest.depth, forest.feature.shape[0]
        internal, leaves = 2 ** depth - 1, 2 ** depth
        self.n_features, self.depth = forest.n_features, depth
        node, right = _paths(depth)
        path_feature = forest.feature[:, node]                         # (trees, leaves, depth)
        parent_cover = forest.cover[:, node]
        child_cover = forest.cover[:, 2 * node + 1 + right]
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(parent_cover > 0, child_cover / parent_cover, 0.0)
        # A feature's slot is the level where the path first splits on it; z multiplies the
        # fractions of its splits.
        levels = np.arange(depth)
        slot = np.argmax(path_feature[..., :, None] == path_feature[..., None, :], axis=-1)
        zero = np.prod(np.where(slot[..., None] == levels, fraction[..., None], 1.0), axis=-2)
        table = np.empty((n_trees, leaves, leaves, depth))          # 2^depth patterns too
        chunk = max(1, SHARES_CHUNK_VALUES // (4 ** depth * depth * depth))
        for start in range(0, n_trees, chunk):       # bounds the working memory at load
            part = slice(start, start + chunk)
            table[part] = _shares(forest.leaf_value[part].astype(np.float64), zero[part], depth)
        n_paths = n_trees * leaves
        # One lookup reads a path's shares for all its slots (float32: the tables stay in
        # cache; XGBoost itself sums them in float32).
        self.table = _by_strays(table.reshape(n_paths, leaves, depth),
                                slot.reshape(n_paths, depth)).reshape(-1, depth).astype(np.float32)
        self.path_offset = np.arange(n_paths) * leaves
        self.slot_feature = np.where(slot == levels, path_feature,
                                     forest.n_features).reshape(n_paths, depth)
        # Level by level: each path's node to test (across all trees) and the way it goes.
        self.path_node = ((np.arange(n_trees) * internal)[:, None, None] + node).reshape(
            n_paths, depth).T.copy()
        self.path_right = np.broadcast_to(right == 1, path_feature.shape).reshape(
            n_paths, depth).T.copy()
        self.feature, self.threshold = forest.feature.ravel(), forest.threshold.ravel()
        leaf_weight = np.where(forest.cover[:, :1] > 0,
                               forest.cover[:, internal:] / forest.cover[:, :1], 0.0)
        self.bias = float((leaf_weight * forest.leaf_value).sum() + forest.base_margin)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, n_features + 1): each feature's TreeSHAP value, then the bias, for finite rows."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) <= ROWS_PER_LOOKUP:
            return self._lookup(X)
        return np.concatenate([self._lookup(X[start:start + ROWS_PER_LOOKUP])
                               for start in range(0, len(X), ROWS_PER_LOOKUP)])

    def _lookup(self, X: np.ndarray) -> np.ndarray:
        n, width = len(X), self.n_features + 1
        goes_right = X[:, self.feature] >= self.threshold                  # (n, trees*internal)
        entry = np.broadcast_to(self.path_offset, (n, len(self.path_offset))).copy()
        for k in range(self.depth):
            entry += (goes_right[:, self.path_node[k]] != self.path_right[k]).astype(np.intp) << k
        shares = self.table.take(entry, axis=0)                             # (n, paths, depth)
        index = self.slot_feature + (np.arange(n) * width)[:, None, None]
        phi = np.bincount(index.ravel(), weights=shares.ravel(), minlength=n * width)
        phi = phi.reshape(n, width)
        phi[:, -1] = self.bias       # the column unfilled slots summed into is the bias's
        return phi

    @classmethod
    def from_booster(cls, booster) -> TreeShapTables | None:
        forest = read_forest(booster)
        if forest is None:
            return None
        size = forest.feature.shape[0] * 4 ** forest.depth * forest.depth
        if size > MAX_TABLE_VALUES:
            return None
        tables = cls(forest)
        import xgboost
        probe = probe_rows(forest)[:PROBE_ROWS]
        expected = booster.predict(xgboost.DMatrix(probe, nthread=1), pred_contribs=True,
                                   validate_features=False)
        gap = float(np.abs(tables.contributions(probe) - expected).max())
        if gap > TOLERANCE:
            warnings.warn(f"TreeSHAP tables are off: they differ from XGBoost by {gap:.2g}")
            return None
        return tables


def _paths(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(leaves, depth) heap positions of each leaf's path, the same in every complete tree, and
    whether it turns right there: at level k, when bit (depth - 1 - k) of the leaf's number is
    set."""
    levels = np.arange(depth)
    leaf = np.arange(2 ** depth)[:, None]
    return (2 ** levels - 1) + (leaf >> (depth - levels)), (leaf >> (depth - 1 - levels)) & 1


def _by_strays(shares: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """The shares (paths, o patterns, depth) re-indexed by the levels a row strays from
    (bit k: it goes the other way at level k, which clears the o bit of that level's slot)."""
    depth = slot.shape[1]
    strays = np.arange(2 ** depth)
    cleared = np.zeros((len(slot), len(strays)), dtype=np.intp)
    for k in range(depth):
        cleared |= np.where((strays >> k) & 1 == 1, (1 << slot[:, k:k + 1]), 0)
    return np.take_along_axis(shares, ((2 ** depth - 1) ^ cleared)[..., None], axis=1)


def _shares(leaf_value: np.ndarray, zero: np.ndarray, depth: int) -> np.ndarray:
    """(trees, leaves, 2^depth patterns, depth slots): the formula above, for every pattern of
    the slots' o bits (bit k of the pattern is o_k)."""
    slots = np.arange(depth)
    subsets = np.arange(2 ** depth)
    member = ((subsets[:, None] >> slots) & 1).astype(bool)               # (subsets, slots)
    size = member.sum(axis=1)
    weight = np.array([math.factorial(s) * math.factorial(depth - s - 1) / math.factorial(depth)
                       if s < depth else 0.0 for s in size])
    # W[p, j, S]: S's weight when S lies within pattern p's o bits and leaves j out.
    within = (subsets[None, :] & ~subsets[:, None]) == 0                   # (patterns, subsets)
    leaves_out = ~member.T                                                 # (j, S): j not in S
    W = np.where(within[:, None, :] & leaves_out[None, :, :], weight, 0.0)  # (patterns, j, S)
    # Z[..., S, j]: the product of z_k over the slots k neither in S nor j.
    outside = ~member[:, None, :] & (slots[None, :, None] != slots[None, None, :])  # (S, j, k)
    Z = np.prod(np.where(outside, zero[..., None, None, :], 1.0), axis=-1)  # (trees, leaves, S, j)
    on = member.astype(np.float64)                                         # (patterns, j): o_j
    summed = np.einsum("pjs,tlsj->tlpj", W, Z)
    return leaf_value[..., None, None] * (on - zero[..., None, :]) * summed
