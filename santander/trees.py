"""Small batches of an XGBoost binary classifier, scored by walking its trees in numpy.

XGBoost's `inplace_predict` has a fixed cost per call whatever the row count, several times
what walking the same trees level by level as numpy arrays costs for one row; the walk grows
with the rows until the two meet at a few dozen (`bench/fast_paths.py` measures both on the
xgboost family as selection trains it). A server answering lone callers spends most of a
request's model time in that fixed cost, so the loader's XGBoost adapter scores up to
SMALL_BATCH_ROWS rows here and hands larger batches to XGBoost.

Each tree is laid out as a complete binary tree of the model's depth (heap order: node i's
children are 2i+1 and 2i+2). A leaf above the bottom level becomes a split that always goes
left (threshold +inf), with its value copied to every bottom leaf beneath it. Split rule as
XGBoost's: `x < threshold` goes left, on float32 values.

Only what it can reproduce: the gbtree booster, `binary:logistic`, numerical splits, finite
inputs, depth at most MAX_DEPTH. `from_booster` says None for anything else, and also when its
answers on probe rows differ from XGBoost's by more than TOLERANCE; the caller keeps XGBoost.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

SMALL_BATCH_ROWS = 32
MAX_DEPTH = 10
TOLERANCE = 1e-5
PROBE_ROWS = 256


@dataclass(frozen=True)
class HeapForest:
    """An XGBoost binary classifier's trees, each a complete binary tree of `depth` in heap
    order (position i's children are 2i+1 and 2i+2)."""
    feature: np.ndarray       # (trees, 2^depth - 1): the split feature of each internal position
    threshold: np.ndarray     # (trees, 2^depth - 1) float32; +inf where a leaf was padded
    leaf_value: np.ndarray    # (trees, 2^depth) float32
    depth: int
    n_features: int
    base_margin: float        # base_score as log-odds


def read_forest(booster) -> HeapForest | None:
    """The booster's trees as a HeapForest, or None for a model this layout cannot hold (a
    warning says so when the model cannot be read at all)."""
    try:
        return _tables(json.loads(booster.save_raw("json")))
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        warnings.warn(f"cannot read the XGBoost model's trees ({exc})")
        return None


class SmallBatchTrees:
    def __init__(self, forest: HeapForest):
        n_trees, depth = forest.feature.shape[0], forest.depth
        self.depth, self.n_features = depth, forest.n_features
        self.base_margin = forest.base_margin
        self.feature, self.threshold = forest.feature.ravel(), forest.threshold.ravel()
        self.leaf_value = forest.leaf_value.ravel()
        internal, leaves = 2 ** depth - 1, 2 ** depth
        self.tree_offset = np.arange(n_trees, dtype=np.intp) * internal
        # A bottom-level heap position p of tree t is leaf p - internal in that tree's row.
        self.leaf_offset = np.arange(n_trees, dtype=np.intp) * leaves - internal

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probability of the positive class for finite float32 rows [n, n_features]."""
        flat = np.ascontiguousarray(X, dtype=np.float32).ravel()
        row_start = (np.arange(len(X), dtype=np.intp) * self.n_features)[:, None]
        position = np.zeros((len(X), len(self.tree_offset)), dtype=np.intp)
        for _ in range(self.depth):
            node = self.tree_offset + position
            values = flat.take(row_start + self.feature.take(node))
            position = 2 * position + 1 + (values >= self.threshold.take(node))
        margin = self.leaf_value.take(self.leaf_offset + position).sum(axis=1, dtype=np.float64)
        return (1.0 / (1.0 + np.exp(-(margin + self.base_margin)))).astype(np.float32)

    @classmethod
    def from_booster(cls, booster) -> SmallBatchTrees | None:
        """The booster's trees as arrays, or None if they cannot be reproduced exactly."""
        forest = read_forest(booster)
        if forest is None:
            return None
        trees = cls(forest)
        probe = probe_rows(forest)
        gap = float(np.abs(trees.predict(probe) - booster.inplace_predict(probe)).max())
        if gap > TOLERANCE:
            warnings.warn(f"small-batch scoring is off: it differs from XGBoost by {gap:.2g}")
            return None
        return trees


def _tables(model: dict) -> HeapForest | None:
    """The model's HeapForest, or None if unsupported."""
    learner = model["learner"]
    booster = learner["gradient_booster"]
    if booster["name"] != "gbtree" or learner["objective"]["name"] != "binary:logistic":
        return None
    params = learner["learner_model_param"]
    if int(params.get("num_target", 1)) != 1 or int(params.get("num_class", 0)) > 1:
        return None
    base_score = json.loads(params["base_score"]) if params["base_score"].startswith("[") \
        else [float(params["base_score"])]
    base_margin = float(np.log(base_score[0] / (1 - base_score[0])))
    trees = booster["model"]["trees"]
    if any(any(tree.get("split_type", [])) or tree.get("categories") for tree in trees):
        return None                                    # categorical splits
    depths = [_depth(tree) for tree in trees]
    depth = max(depths, default=0)
    if not trees or depth == 0 or depth > MAX_DEPTH:
        return None
    internal, leaves = 2 ** depth - 1, 2 ** depth
    feature = np.zeros((len(trees), internal), dtype=np.intp)
    threshold = np.full((len(trees), internal), np.inf, dtype=np.float32)
    leaf_value = np.zeros((len(trees), leaves), dtype=np.float32)
    for t, tree in enumerate(trees):
        left, right = tree["left_children"], tree["right_children"]
        split_feature, split_condition = tree["split_indices"], tree["split_conditions"]
        stack = [(0, 0, 0)]                            # (node, heap position, level)
        while stack:
            node, position, level = stack.pop()
            if left[node] == -1:                       # XGBoost keeps a leaf's value here
                first = last = position
                for _ in range(depth - level):
                    first, last = 2 * first + 1, 2 * last + 2
                leaf_value[t, first - internal:last - internal + 1] = split_condition[node]
                continue
            feature[t, position] = split_feature[node]
            threshold[t, position] = split_condition[node]
            stack += [(left[node], 2 * position + 1, level + 1),
                      (right[node], 2 * position + 2, level + 1)]
    return HeapForest(feature, threshold, leaf_value, depth, int(params["num_feature"]),
                      base_margin)


def _depth(tree: dict) -> int:
    left, right = tree["left_children"], tree["right_children"]
    deepest, stack = 0, [(0, 0)]                       # from the root: only reachable nodes
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if left[node] != -1:
            stack += [(left[node], level + 1), (right[node], level + 1)]
    return deepest


def probe_rows(forest: HeapForest) -> np.ndarray:
    """Rows spread over each feature's split range, so both sides of most splits are taken."""
    rng = np.random.default_rng(0)
    feature, threshold = forest.feature, forest.threshold
    low, high = np.full(forest.n_features, -1.0), np.full(forest.n_features, 1.0)
    used = np.isfinite(threshold)
    for f in np.unique(feature[used]):
        cuts = threshold[used & (feature == f)]
        low[f], high[f] = cuts.min() - 1.0, cuts.max() + 1.0
    return rng.uniform(low, high, size=(PROBE_ROWS, forest.n_features)).astype(np.float32)
