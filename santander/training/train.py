"""The training job, stage by stage: data -> selection -> holdout evaluation -> export.

`Pipeline` holds the one sequence: the notebook calls its steps one by one, `run` (train) and
retraining call `Pipeline.run`. `RunOptions` is a run's configuration, given once.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from sklearn.model_selection import FixedThresholdClassifier, train_test_split

from santander import layout
from santander.training import tracking
from santander.training.candidates import FAMILIES, Family, get_family
from santander.config import (DEPLOY_DIR, HOLDOUT_FRACTION, MIN_ROWS_PER_CLASS, MODEL_NAME,
                              N_FOLDS, QUICK_ROWS, SEED)
from santander.training.data.io import Dataset, fingerprint, load_training_data
from santander.training.evaluation import holdout_metrics, write_report
from santander.errors import ExportError
from santander.export import export_version, withdraw_version
from santander.reference import reference_sample
from santander.training.selection import CandidateResult, SelectionResult, nested_order, select

PACKAGES = ("numpy", "pandas", "scikit-learn", "xgboost", "lightgbm", "mlserver")


@dataclass
class Split:
    X_train: np.ndarray
    X_holdout: np.ndarray
    y_train: np.ndarray
    y_holdout: np.ndarray


@dataclass
class Refit:
    model: FixedThresholdClassifier   # the winner refitted on all training rows
    candidate: CandidateResult
    holdout_proba: np.ndarray
    holdout: dict[str, Any]
    fit_seconds: float


@dataclass
class TrainingOutcome:
    version: str
    version_dir: Path
    report_dir: Path
    report: dict[str, Any]
    tracking_run: str | None = None    # the MLflow run id (None: tracking off or failed)


def load_dataset(path: str | Path, quick: bool = False) -> Dataset:
    """Read and validate; in quick mode keep a stratified subsample of QUICK_ROWS rows."""
    dataset = load_training_data(path, min_positives=MIN_ROWS_PER_CLASS)
    if not quick or len(dataset.y) <= QUICK_ROWS:
        return dataset
    rows = np.sort(nested_order(dataset.y, SEED)[:QUICK_ROWS])
    X, y = dataset.X[rows], dataset.y[rows]
    return Dataset(X=X, y=y, ids=dataset.ids[rows], fingerprint=fingerprint(X, y),
                   source=dataset.source)


def holdout_split(dataset: Dataset) -> Split:
    """Stratified 80/20: the same positive rate on both sides."""
    X_train, X_holdout, y_train, y_holdout = train_test_split(
        dataset.X, dataset.y, test_size=HOLDOUT_FRACTION, stratify=dataset.y, random_state=SEED)
    return Split(X_train, X_holdout, y_train, y_holdout)


def refit_winner(selection: SelectionResult, split: Split) -> Refit:
    """Refit the winner on all training rows at its tuned threshold; score the holdout."""
    winner = selection.winner
    family = get_family(winner.family)
    model = FixedThresholdClassifier(
        family.build(**winner.params),
        threshold=winner.threshold, response_method="predict_proba")
    start = time.perf_counter()
    model.fit(split.X_train, split.y_train)
    seconds = time.perf_counter() - start
    proba = model.predict_proba(split.X_holdout)[:, 1]
    return Refit(model=model, candidate=winner, holdout_proba=proba,
                 holdout=holdout_metrics(split.y_holdout, proba, winner.threshold),
                 fit_seconds=seconds)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def model_card(dataset: Dataset, selection: SelectionResult, refit: Refit,
               quick: bool) -> dict[str, Any]:
    winner = refit.candidate
    family = get_family(winner.family)
    return {
        "family": family.name,
        "description": family.description,
        "hyperparameters": winner.params,
        "threshold": winner.threshold,
        "cv": {"folds": N_FOLDS, "f1_mean": winner.f1, "f1_std": float(np.std(winner.fold_f1)),
               "roc_auc_mean": float(np.mean(winner.fold_roc_auc)),
               "pr_auc_mean": float(np.mean(winner.fold_pr_auc))},
        "holdout": {k: refit.holdout[k] for k in
                    ("f1", "precision", "recall", "roc_auc", "pr_auc", "rows", "positives")},
        "data": {"source": dataset.source, "rows": int(len(dataset.y)),
                 "positives": dataset.positives, "fingerprint": dataset.fingerprint,
                 "quick": quick, "parts": dataset.provenance(quick)},
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
    }


def build_report(card: dict[str, Any], selection: SelectionResult, refit: Refit,
                 timings: dict[str, float]) -> dict[str, Any]:
    return {
        "model_card": card,
        "candidates": [c.summary() for c in selection.ranking],
        "winner": refit.candidate.summary(),
        "holdout": refit.holdout,
        "timings_seconds": timings,
    }


@dataclass(frozen=True)
class RunOptions:
    """How and where one training run works: set once, read by every step."""
    quick: bool = False                    # a small stratified sample and reduced spaces
    repository: str | Path = DEPLOY_DIR    # the MLServer model repository written to
    name: str = MODEL_NAME
    reports_dir: str | Path | None = None  # None: the repository's own (layout.reports_dir)
    n_jobs: int = -1
    dask_scheduler: str | None = None
    progress: bool = True


@dataclass
class Pipeline:
    """Holdout split -> selection -> refit of the winner -> export and report.

    Each step runs the steps before it if they have not run yet, and keeps its result in an
    attribute (`split_`, `selection_`, `refit_`, `outcome_`). `card_extra(split)` adds to the
    model card (retraining scores its base version on the same holdout)."""
    dataset: Dataset
    families: Iterable[Family] = FAMILIES
    options: RunOptions = field(default_factory=RunOptions)
    card_extra: Callable[[Split], dict[str, Any]] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    split_: Split | None = field(default=None, init=False)
    selection_: SelectionResult | None = field(default=None, init=False)
    refit_: Refit | None = field(default=None, init=False)
    outcome_: TrainingOutcome | None = field(default=None, init=False)

    def split(self) -> Split:
        if self.split_ is None:
            start = time.perf_counter()
            self.split_ = holdout_split(self.dataset)
            # The split holds its own copies of the rows; the dataset keeps only its description.
            self.dataset = self.dataset.without_features()
            self.timings["split"] = time.perf_counter() - start
        return self.split_

    def select(self) -> SelectionResult:
        if self.selection_ is None:
            split, options = self.split(), self.options
            start = time.perf_counter()
            self.selection_ = select(split.X_train, split.y_train, self.families,
                                     quick=options.quick, n_jobs=options.n_jobs,
                                     dask_scheduler=options.dask_scheduler,
                                     progress=options.progress)
            self.timings["selection"] = time.perf_counter() - start
        return self.selection_

    def refit(self) -> Refit:
        if self.refit_ is None:
            self.refit_ = refit_winner(self.select(), self.split())
            self.timings["refit"] = self.refit_.fit_seconds
        return self.refit_

    def export(self) -> TrainingOutcome:
        """Export the refitted winner as a new version, then write its report."""
        if self.outcome_ is None:
            refit, split, options = self.refit(), self.split(), self.options
            card = {**model_card(self.dataset, self.selection_, refit, options.quick),
                    **(self.card_extra(split) if self.card_extra else {})}
            served = refit.model.estimator_
            reference = reference_sample(split.X_train,
                                         lambda rows: served.predict_proba(rows)[:, 1])
            version_dir = export_version(served,
                                         get_family(refit.candidate.family).artifact_format,
                                         refit.candidate.threshold, card, options.repository,
                                         options.name, reference=reference)
            version = version_dir.name
            report = build_report({**card, "version": version, "version_dir": str(version_dir)},
                                  self.selection_, refit, self.timings)
            reports_root = options.reports_dir or layout.reports_dir(options.repository)
            try:
                report_dir = write_report(Path(reports_root) / options.name / version,
                                          report, split.y_holdout, refit.holdout_proba)
            except Exception as exc:
                # A version without its report is not shipped (nothing half-done stays visible).
                withdraw_version(version_dir)
                raise ExportError(f"the report of version {version} could not be written "
                                  f"({exc}); the version was withdrawn") from exc
            run_id = tracking.log_version(report, report_dir, version_dir)
            self.outcome_ = TrainingOutcome(version=version, version_dir=version_dir,
                                            report_dir=report_dir, report=report,
                                            tracking_run=run_id)
        return self.outcome_

    def run(self) -> TrainingOutcome:
        """Every step, in order."""
        return self.export()


def run(data_path: str | Path, options: RunOptions = RunOptions(),
        families: Iterable[Family] = FAMILIES) -> TrainingOutcome:
    """The whole job. Data errors are raised before anything is written."""
    start = time.perf_counter()
    dataset = load_dataset(data_path, quick=options.quick)
    return Pipeline(dataset, families, options,
                    timings={"data": time.perf_counter() - start}).run()
