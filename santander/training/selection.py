"""Model selection: stratified 5-fold CV over every family, ranked by F1 at a tuned threshold.

Why not scikit-learn's HalvingGridSearchCV: the ranking metric is F1 at the threshold tuned on
the pooled out-of-fold predictions, which a per-fold scorer cannot express, and one shared job
pool over all families keeps both cores busy. So the halving is done here, on top of the same
fold loop: each family's configurations are first compared on nested stratified subsamples
(1/9, 1/3 of the rows ...) and only the best third moves on; each family's survivor gets the
full 5-fold CV. Fold jobs run through joblib, so the run can use a Dask cluster unchanged.

The slow families (complexity >= RACE_COMPLEXITY) race before their full run: each is scored
by 5-fold CV on 1/9 and on 1/3 of the rows, and goes on to the full 5-fold CV only if it could
still win. Its learning curve is projected to all rows (`race_projection`), with a margin of
standard errors; a family whose projection stays below the best full-CV F1 of the other
families is raced out and ranked after them, with the figures of its 1/3 rung (the report
says so). Without another family to race against (a retrain of one family), or in quick mode,
nothing races.
"""

from __future__ import annotations

import json
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
from santander.config import (HALVING_FACTOR, N_FOLDS, RACE_COMPLEXITY, RACE_CURVE_DECAY,
                              RACE_STANDARD_ERRORS, SEED)


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
    # Raced out before its full run: its projection at all rows and what it raced against.
    race: dict[str, float] | None = None

    @property
    def f1(self) -> float:
        return float(np.mean(self.fold_f1))

    @property
    def f1_standard_error(self) -> float:
        return float(np.std(self.fold_f1, ddof=1) / np.sqrt(len(self.fold_f1)))

    def summary(self) -> dict[str, Any]:
        def stat(values: list[float]) -> dict[str, float]:
            return {"mean": float(np.mean(values)), "std": float(np.std(values))}
        return {
            "family": self.family, "params": self.params, "threshold": self.threshold,
            "f1": stat(self.fold_f1), "roc_auc": stat(self.fold_roc_auc),
            "pr_auc": stat(self.fold_pr_auc), "fit_seconds": self.fit_seconds,
            "rows": self.rows, "folds": {"f1": self.fold_f1, "roc_auc": self.fold_roc_auc,
                                        "pr_auc": self.fold_pr_auc},
            "halving": self.halving, "raced_out": self.race,
        }


@dataclass
class SelectionResult:
    ranking: list[CandidateResult]   # best first

    @property
    def winner(self) -> CandidateResult:
        return self.ranking[0]


def _fit_fold(task: int, family_name: str, params: dict[str, Any], X: np.ndarray,
              y: np.ndarray, train: np.ndarray, valid: np.ndarray
              ) -> tuple[int, np.ndarray, float]:
    """Fit on the train rows, predict the valid rows; tagged with its task number (the pool
    returns results as they finish)."""
    estimator = get_family(family_name).build(**params)
    # One thread per fit: the pool runs fits side by side (see candidates).
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        estimator.fit(X[train], y[train])
        seconds = time.perf_counter() - start
        proba = estimator.predict_proba(X[valid])[:, 1]
    return task, proba, seconds


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


def race_projection(small: CandidateResult, large: CandidateResult) -> float:
    """An optimistic F1 at HALVING_FACTOR times `large`'s rows, from two rungs HALVING_FACTOR
    apart: the next step of the learning curve gains RACE_CURVE_DECAY times the last step's
    gain, and RACE_STANDARD_ERRORS standard errors of that projection are added (from the two
    rungs' fold spreads)."""
    decay = RACE_CURVE_DECAY
    projection = large.f1 + decay * (large.f1 - small.f1)
    error = np.hypot((1 + decay) * large.f1_standard_error, decay * small.f1_standard_error)
    return float(projection + RACE_STANDARD_ERRORS * error)


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def _with_race_rungs(plan: list[tuple[int, int]], min_rows: int) -> list[tuple[int, int]]:
    """A plan with at least two rungs below all rows (1/9 and 1/3 of them), for the race."""
    plan = list(plan)
    while len(plan) < 3 and plan[0][1] // HALVING_FACTOR >= min_rows:
        configs, rows = plan[0]
        plan.insert(0, (configs, rows // HALVING_FACTOR))
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


@dataclass(frozen=True)
class _FoldFit:
    """One fit of one configuration on one fold of one rung."""
    family: Family
    config: int                      # index into the family's surviving configurations
    params: dict[str, Any]
    train: np.ndarray                # row indices into X
    valid: np.ndarray
    valid_at: np.ndarray             # where the valid rows sit in the rung's rows

    @property
    def cost(self) -> int:
        return self.family.complexity * len(self.train)


@dataclass
class _Rung:
    """A family's configurations compared on some rows, with the same folds for each."""
    family: Family
    rows: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    configs: list[dict[str, Any]]

    def fits(self) -> list[_FoldFit]:
        return [_FoldFit(self.family, c, params, self.rows[train], self.rows[valid], valid)
                for c, params in enumerate(self.configs) for train, valid in self.folds]


class ModelSearch:
    """Every family's configurations compared by successive halving, each family's survivor
    scored by full 5-fold CV, the survivors ranked by mean fold F1 (ties: the simpler family).

    Configured in `__init__`, run by `fit(X, y)`; the result is `ranking_` (best first),
    `winner_` and `result_` (a SelectionResult).
    """

    def __init__(self, families: Iterable[Family] = FAMILIES, quick: bool = False,
                 n_jobs: int = -1, dask_scheduler: str | None = None, progress: bool = True,
                 seed: int = SEED, race: bool | None = None):
        self.families = families
        self.quick = quick
        self.n_jobs = n_jobs
        self.dask_scheduler = dask_scheduler
        self.progress = progress
        self.seed = seed
        self.race = race            # None: race unless quick

    def fit(self, X: np.ndarray, y: np.ndarray) -> "ModelSearch":
        families = list(self.families)
        order = nested_order(y, self.seed)
        min_rows = min(len(y), max(500, 20 * N_FOLDS))
        plans = {f.name: _halving_plan(f, len(y), self.quick, min_rows) for f in families}
        racing = self._racing(families, plans, min_rows)
        for name in racing:
            plans[name] = _with_race_rungs(plans[name], min_rows)
        # First the racers' rungs below all rows beside everyone else's whole plan, then
        # the full run of the racers that could still win.
        first = {name: plan[:-1] if name in racing else plan for name, plan in plans.items()}
        survivors = {f.name: f.configurations(self.quick) for f in families}
        history: dict[str, list[dict[str, Any]]] = {f.name: [] for f in families}
        scored: dict[tuple[str, int, str], CandidateResult] = {}   # (family, rows, params)
        with ExitStack() as stack:
            pool = self._pool(stack)
            bar = stack.enter_context(tqdm(
                total=sum(c * N_FOLDS for plan in plans.values() for c, _ in plan),
                desc="cross-validation", unit="fit", disable=not self.progress))
            last = self._stages(pool, families, first, survivors, history, scored, order, X,
                                y, bar)
            final = [last[f.name] for f in families if f.name not in racing]
            best = max((r.f1 for r in final), default=None)
            stayed = []
            for name in racing:
                small, large = (scored[name, rows, _key(last[name].params)]
                                for rows in (plans[name][-3][1], plans[name][-2][1]))
                projection = race_projection(small, large)
                if projection < best:
                    last[name].race = {"projected_f1": projection, "best_f1": best,
                                       "rows": large.rows}
                    bar.update(N_FOLDS)
                else:
                    stayed.append(name)
            if stayed:
                rest = {name: plans[name][-1:] for name in stayed}
                last.update(self._stages(pool, families, rest, survivors, history, scored,
                                         order, X, y, bar))
                final += [last[name] for name in stayed]
        complexity = {f.name: f.complexity for f in families}
        raced_out = [last[name] for name in racing if last[name].race]
        self.ranking_ = (sorted(final, key=lambda r: (-r.f1, complexity[r.family]))
                         + sorted(raced_out, key=lambda r: -r.f1))
        self.winner_ = self.ranking_[0]
        self.result_ = SelectionResult(ranking=self.ranking_)
        return self

    def _racing(self, families: list[Family], plans: dict, min_rows: int) -> list[str]:
        """The families that race: slow ones, when another family runs in full beside them
        and their data allows a rung at 1/9 of the rows."""
        if not (self.race if self.race is not None else not self.quick):
            return []
        slow = [f.name for f in families if f.complexity >= RACE_COMPLEXITY
                and len(_with_race_rungs(plans[f.name], min_rows)) >= 3]
        return slow if len(slow) < len(families) else []

    def _stages(self, pool, families: list[Family], plans: dict, survivors: dict,
                history: dict, scored: dict, order: np.ndarray, X: np.ndarray, y: np.ndarray,
                bar) -> dict[str, CandidateResult]:
        """Every family's rungs of `plans`, stage by stage, each family's last rung on the last
        stage; each rung keeps the best third of its configurations. Every candidate scored
        goes into `scored`; returns each family's best candidate on its last rung."""
        n_stages = max(len(plan) for plan in plans.values())
        last = {}
        for stage in range(n_stages):
            rungs = []
            for family in families:
                plan = plans.get(family.name, [])
                if stage >= n_stages - len(plan):
                    _, n_rows = plan[stage - (n_stages - len(plan))]
                    rungs.append(self._rung(family, np.sort(order[:n_rows]), y,
                                            survivors[family.name]))
            oof, seconds = self._run(pool, rungs, X, y, bar)
            for rung in rungs:
                ranked = self._score(rung, y, oof, seconds, history[rung.family.name])
                scored.update({(r.family, r.rows, _key(r.params)): r for r in ranked})
                last[rung.family.name] = ranked[0]
                keep = max(1, math.ceil(len(rung.configs) / HALVING_FACTOR))
                survivors[rung.family.name] = [c.params for c in ranked[:keep]]
        return last

    def _pool(self, stack: ExitStack) -> Parallel:
        if self.dask_scheduler:
            from distributed import Client
            stack.enter_context(Client(self.dask_scheduler))
            stack.enter_context(parallel_config(backend="dask"))
        return stack.enter_context(Parallel(n_jobs=self.n_jobs, return_as="generator_unordered"))

    def _rung(self, family: Family, rows: np.ndarray, y: np.ndarray,
              configs: list[dict[str, Any]]) -> _Rung:
        folds = list(StratifiedKFold(N_FOLDS, shuffle=True, random_state=self.seed)
                     .split(rows, y[rows]))
        return _Rung(family, rows, folds, configs)

    @staticmethod
    def _run(pool: Parallel, rungs: list[_Rung], X: np.ndarray, y: np.ndarray, bar
             ) -> tuple[dict[tuple[str, int], np.ndarray], dict[tuple[str, int], list[float]]]:
        """Every fold fit of the stage, costly ones first (better packing on few cores): the
        out-of-fold predictions and fit times per (family, configuration)."""
        fits = sorted((fit for rung in rungs for fit in rung.fits()), key=lambda f: -f.cost)
        oof = {(r.family.name, c): np.zeros(len(r.rows)) for r in rungs
               for c in range(len(r.configs))}
        seconds: dict[tuple[str, int], list[float]] = {}
        for i, proba, secs in pool(delayed(_fit_fold)(i, f.family.name, f.params, X, y,
                                                      f.train, f.valid)
                                   for i, f in enumerate(fits)):
            key = (fits[i].family.name, fits[i].config)
            oof[key][fits[i].valid_at] = proba
            seconds.setdefault(key, []).append(secs)
            bar.update()
        return oof, seconds

    @staticmethod
    def _score(rung: _Rung, y: np.ndarray, oof: dict, seconds: dict,
               history: list[dict[str, Any]]) -> list[CandidateResult]:
        """The rung's configurations scored, best first; each is also added to history."""
        name, truth = rung.family.name, y[rung.rows]
        scored = []
        for c, params in enumerate(rung.configs):
            threshold, f1s, rocs, prs = _score_oof(truth, oof[(name, c)], rung.folds)
            history.append({"rows": int(len(rung.rows)), "params": params,
                            "f1": float(np.mean(f1s)), "threshold": threshold})
            scored.append(CandidateResult(
                family=name, params=params, threshold=threshold, fold_f1=f1s,
                fold_roc_auc=rocs, fold_pr_auc=prs,
                fit_seconds=float(np.mean(seconds[(name, c)])), rows=int(len(rung.rows)),
                halving=history, oof_proba=oof[(name, c)]))
        return sorted(scored, key=lambda result: -result.f1)


def select(X: np.ndarray, y: np.ndarray, families: Iterable[Family] = FAMILIES,
           quick: bool = False, n_jobs: int = -1, dask_scheduler: str | None = None,
           progress: bool = True, seed: int = SEED, race: bool | None = None
           ) -> SelectionResult:
    """ModelSearch(...).fit(X, y).result_: the families ranked by mean 5-fold F1."""
    return ModelSearch(families, quick=quick, n_jobs=n_jobs, dask_scheduler=dask_scheduler,
                       progress=progress, seed=seed, race=race).fit(X, y).result_
