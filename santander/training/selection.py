"""Model selection: stratified 5-fold CV over every family, ranked by F1 at a tuned threshold.

Why not scikit-learn's HalvingGridSearchCV: the ranking metric is F1 at the threshold tuned on
the pooled out-of-fold predictions, which a per-fold scorer cannot express, and one shared job
pool over all families keeps both cores busy. So the halving is done here, on top of the same
fold loop: each family's configurations are first compared on nested stratified subsamples
(1/9, 1/3 of the rows ...) and only the best third moves on; each family's survivor gets the
full 5-fold CV. Fold jobs run through joblib, so the run can use a Dask cluster unchanged.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from santander.training.candidates import FAMILIES, Family, get_family
from santander.config import HALVING_FACTOR, N_FOLDS, SEED


def tune_threshold(y_true: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """The decision threshold maximising F1 (predict positive when proba >= threshold)."""
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1[:-1]))  # the last point has no threshold
    return float(thresholds[best]), float(f1[best])


@dataclass
class CandidateResult:
    """One family's best configuration, scored by 5-fold CV at its tuned threshold."""

    family: str
    params: dict[str, Any]
    threshold: float
    fold_f1: list[float]
    fold_roc_auc: list[float]
    fold_pr_auc: list[float]
    fit_seconds: float              # mean over folds
    rows: int
    halving: list[dict[str, Any]] = field(default_factory=list)
    oof_proba: np.ndarray | None = field(default=None, repr=False)

    @property
    def f1(self) -> float:
        return float(np.mean(self.fold_f1))

    def summary(self) -> dict[str, Any]:
        def stat(values: list[float]) -> dict[str, float]:
            return {"mean": float(np.mean(values)), "std": float(np.std(values))}
        return {
            "family": self.family, "params": self.params, "threshold": self.threshold,
            "f1": stat(self.fold_f1), "roc_auc": stat(self.fold_roc_auc),
            "pr_auc": stat(self.fold_pr_auc), "fit_seconds": self.fit_seconds,
            "rows": self.rows, "folds": {"f1": self.fold_f1, "roc_auc": self.fold_roc_auc,
                                        "pr_auc": self.fold_pr_auc},
            "halving": self.halving,
        }


@dataclass
class SelectionResult:
    ranking: list[CandidateResult]   # best first

    @property
    def winner(self) -> CandidateResult:
        return self.ranking[0]


def _fit_fold(family_name: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray,
              train: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, float]:
    estimator = get_family(family_name).build(**params)
    # One thread per fit: the pool runs fits side by side (see candidates).
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        estimator.fit(X[train], y[train])
        seconds = time.perf_counter() - start
        proba = estimator.predict_proba(X[valid])[:, 1]
    return proba, seconds


def nested_order(y: np.ndarray, seed: int = SEED) -> np.ndarray:
    """An order of the rows whose every prefix has (almost exactly) the class balance of y."""
    rng = np.random.default_rng(seed)
    rank = np.empty(len(y))
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rank[rng.permutation(members)] = (np.arange(len(members)) + 0.5) / len(members)
    return np.argsort(rank, kind="stable")


def _halving_plan(family: Family, n_rows: int, quick: bool, min_rows: int) -> list[tuple[int, int]]:
    """[(configs evaluated, rows used)] per rung, ending with one config on all rows."""
    n_configs = len(family.configurations(quick))
    n_rungs = 1 + (math.ceil(math.log(n_configs, HALVING_FACTOR)) if n_configs > 1 else 0)
    plan, configs = [], n_configs
    for rung in range(n_rungs):
        rows = max(min_rows, n_rows // HALVING_FACTOR ** (n_rungs - 1 - rung))
        plan.append((configs, min(rows, n_rows)))
        configs = max(1, math.ceil(configs / HALVING_FACTOR))
    return plan


def _score_oof(y: np.ndarray, oof: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
               ) -> tuple[float, list[float], list[float], list[float]]:
    """The threshold tuned on all out-of-fold predictions (the one the refit uses), and per
    fold F1, ROC AUC and PR AUC. Each fold's F1 is taken at a threshold tuned on the other
    folds' predictions only, so the mean F1 is not flattered by tuning on what it scores."""
    threshold, _ = tune_threshold(y, oof)
    f1s, rocs, prs = [], [], []
    for others, valid in folds:
        truth, proba = y[valid], oof[valid]
        fold_threshold, _ = tune_threshold(y[others], oof[others])
        f1s.append(float(f1_score(truth, proba >= fold_threshold, zero_division=0)))
        rocs.append(float(roc_auc_score(truth, proba)))
        prs.append(float(average_precision_score(truth, proba)))
    return threshold, f1s, rocs, prs


def select(X: np.ndarray, y: np.ndarray, families: Iterable[Family] = FAMILIES,
           quick: bool = False, n_jobs: int = -1, dask_scheduler: str | None = None,
           progress: bool = True, seed: int = SEED) -> SelectionResult:
    """Rank the families by mean 5-fold F1 at each one's out-of-fold tuned threshold."""
    families = list(families)
    order = nested_order(y, seed)
    min_rows = min(len(y), max(500, 20 * N_FOLDS))
    plans = {f.name: _halving_plan(f, len(y), quick, min_rows) for f in families}
    n_stages = max(len(p) for p in plans.values())
    total = sum(c * N_FOLDS for p in plans.values() for c, _ in p)
    survivors = {f.name: f.configurations(quick) for f in families}
    history: dict[str, list[dict[str, Any]]] = {f.name: [] for f in families}
    final: dict[str, CandidateResult] = {}

    with ExitStack() as stack:
        if dask_scheduler:
            from distributed import Client
            stack.enter_context(Client(dask_scheduler))
            stack.enter_context(parallel_config(backend="dask"))
        pool = stack.enter_context(Parallel(n_jobs=n_jobs, return_as="generator_unordered"))
        bar = stack.enter_context(tqdm(total=total, desc="cross-validation", unit="fit",
                                       disable=not progress))
        for stage in range(n_stages):
            # Align every family's last rung (all rows) with the last stage.
            rungs = []
            for family in families:
                plan = plans[family.name]
                offset = n_stages - len(plan)
                if stage >= offset:
                    _, n_rows = plan[stage - offset]
                    rungs.append((family, np.sort(order[:n_rows])))
            tasks, splits = [], {}
            for family, rows in rungs:
                folds = list(StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed)
                             .split(rows, y[rows]))
                splits[family.name] = (rows, folds)
                for c, params in enumerate(survivors[family.name]):
                    for k, (train, valid) in enumerate(folds):
                        tasks.append((family.complexity, family.name, c, k, params,
                                      rows[train], rows[valid]))
            # Costly fits first (complexity x rows): better packing on few cores.
            tasks.sort(key=lambda t: -t[0] * len(t[5]))

            def run(task):
                _, name, c, k, params, train, valid = task
                return name, c, k, *_fit_fold(name, params, X, y, train, valid)

            oof = {(name, c): np.zeros(len(splits[name][0])) for _, name, c, *_ in tasks}
            seconds: dict[tuple[str, int], list[float]] = {}
            for name, c, k, proba, secs in pool(delayed(run)(t) for t in tasks):
                rows, folds = splits[name]
                oof[(name, c)][folds[k][1]] = proba
                seconds.setdefault((name, c), []).append(secs)
                bar.update()

            for family, rows in rungs:
                name, configs = family.name, survivors[family.name]
                scored = []
                for c, params in enumerate(configs):
                    threshold, f1s, rocs, prs = _score_oof(y[rows], oof[(name, c)],
                                                           splits[name][1])
                    scored.append((float(np.mean(f1s)), c))
                    history[name].append({"rows": int(len(rows)), "params": params,
                                          "f1": float(np.mean(f1s)), "threshold": threshold})
                    if len(configs) == 1 and stage == n_stages - 1:
                        final[name] = CandidateResult(
                            family=name, params=params, threshold=threshold, fold_f1=f1s,
                            fold_roc_auc=rocs, fold_pr_auc=prs,
                            fit_seconds=float(np.mean(seconds[(name, c)])), rows=int(len(rows)),
                            halving=history[name], oof_proba=oof[(name, c)])
                keep = max(1, math.ceil(len(configs) / HALVING_FACTOR))
                scored.sort(key=lambda s: -s[0])
                survivors[name] = [configs[c] for _, c in scored[:keep]]

    complexity = {f.name: f.complexity for f in families}
    ranking = sorted(final.values(), key=lambda r: (-r.f1, complexity[r.family]))
    return SelectionResult(ranking=ranking)
