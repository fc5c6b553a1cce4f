"""Retraining: new data becomes the next version, beside the versions already exported.

By default the base version's winning configuration (family and hyperparameters) is kept:
its 5-fold CV on the new training rows re-tunes the threshold, then it is refitted and scored
on a holdout, exactly as in `train`. `reselect` reruns the whole selection instead. The new
data is used alone, or appended to the rows the base version was trained on (read again from
the files its model card names, and refused if they changed since).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from santander.training.candidates import FAMILIES, Family, get_family
from santander.training.data.io import Dataset, fingerprint
from santander.schema import N_FEATURES
from santander.errors import DataError
from santander.training.evaluation import holdout_metrics
from santander.layout import read_model_settings
from santander.loader import ProbabilityModel, load_version
from santander.training.train import (Pipeline, RunOptions, Split, TrainingOutcome,
                                      load_dataset)
from santander.layout import Version, get_version


def base_configuration(base: Version) -> Family:
    """The base version's winner as a family with exactly one configuration."""
    card = base.card
    if "family" not in card or "hyperparameters" not in card:
        raise DataError(f"version {base.number} has no model card to refit from "
                        "(use --reselect)")
    family = get_family(card["family"])
    fixed = {key: [value] for key, value in card["hyperparameters"].items()}
    return dataclasses.replace(family, space=fixed, quick_space=fixed)


def check_schema(base: Version) -> None:
    """The new version must accept the requests the base version accepts."""
    settings = read_model_settings(base.folder)
    shapes = [tuple(i.get("shape", ())) for i in settings.get("inputs", [])]
    if shapes and shapes[0][-1:] != (N_FEATURES,):
        raise DataError(f"version {base.number} declares inputs of shape {list(shapes[0])}, "
                        f"this package trains on {N_FEATURES} features: retrain it with the "
                        "package version that exported it")


def load_new_data(path: str | Path, base: Version, quick: bool) -> Dataset:
    try:
        return load_dataset(path, quick=quick)
    except DataError as exc:
        raise DataError(f"cannot retrain version {base.number} on {path}: {exc}") from exc


def load_base_data(base: Version) -> Dataset:
    """The rows the base version was trained on, read again and checked by fingerprint."""
    data = base.card.get("data", {})
    parts = data.get("parts") or []
    if not parts:
        raise DataError(f"version {base.number}'s model card does not say where its data "
                        "came from: retrain without --append")
    datasets = []
    for part in parts:
        try:
            dataset = load_dataset(part["path"], quick=bool(part.get("quick")))
        except DataError as exc:
            raise DataError(f"cannot append to version {base.number}'s data: {exc}") from exc
        if dataset.fingerprint != part["fingerprint"]:
            raise DataError(f"cannot append to version {base.number}'s data: {part['path']} "
                            f"has changed since (fingerprint {dataset.fingerprint[:12]}, "
                            f"was {part['fingerprint'][:12]})")
        datasets.append(dataset)
    return combine(datasets, parts)


def combine(datasets: list[Dataset], parts: list[dict]) -> Dataset:
    X = np.concatenate([d.X for d in datasets])
    y = np.concatenate([d.y for d in datasets])
    return Dataset(X=X, y=y, ids=np.concatenate([d.ids for d in datasets]),
                   fingerprint=fingerprint(X, y),
                   source=" + ".join(d.source for d in datasets), parts=list(parts))


def base_on_holdout(base_model: tuple[ProbabilityModel, float], split: Split
                    ) -> dict[str, Any]:
    """The base version scored on the new holdout: is the new version better?"""
    model, threshold = base_model
    return holdout_metrics(split.y_holdout, model.predict_proba(split.X_holdout)[:, 1],
                           threshold)


def retrain(data_path: str | Path, base: int | str | None = None, reselect: bool = False,
            append: bool = False, options: RunOptions = RunOptions()) -> TrainingOutcome:
    """Train the next version of `name` on new data. Every check runs before anything is
    written: an unknown base, unreadable or mismatched data, changed base data."""
    start = time.perf_counter()
    quick = options.quick
    base_version = get_version(options.repository, base, options.name)
    check_schema(base_version)
    base_model = load_version(base_version.folder)     # a damaged base stops here, not after CV
    families = FAMILIES if reselect else [base_configuration(base_version)]
    new = load_new_data(data_path, base_version, quick)
    if append:
        old = load_base_data(base_version)
        if new.fingerprint in {part["fingerprint"] for part in old.parts}:
            raise DataError(f"cannot append {data_path}: version {base_version.number} was "
                            "already trained on these rows")
        dataset = combine([old, new], old.parts + new.provenance(quick))
    else:
        dataset = new

    def retraining(split: Split) -> dict[str, Any]:
        base_scores = base_on_holdout(base_model, split)
        return {"retraining": {
            "base_version": base_version.number, "reselect": reselect,
            "data": "appended to the base version's" if append else "new data alone",
            "new_data": str(Path(data_path).resolve()),
            # Appended: the holdout holds rows the base version was trained on, which
            # flatters the base's scores below.
            "base_saw_holdout_rows": append,
            "base_on_this_holdout": {k: v for k, v in base_scores.items() if k in (
                "f1", "precision", "recall", "roc_auc", "pr_auc", "threshold")}}}

    return Pipeline(dataset, families, options, card_extra=retraining,
                    timings={"data": time.perf_counter() - start}).run()
