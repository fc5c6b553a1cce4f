"""Live metrics: how each served version does on the logged rows whose outcome is known."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sqlalchemy.engine import Engine

from santander.monitoring.outcomes import labelled_predictions
from santander.layout import version_order


def live_metrics(engine: Engine, model_name: str, version: str | None = None) -> list[dict]:
    """Per version, oldest first: labelled rows, positives, precision, recall and F1 of the
    served label, ROC AUC of the probability (None while only one class has been seen)."""
    frame = labelled_predictions(engine, model_name, version)
    results = []
    for name, rows in frame.groupby("model_version", sort=False):
        y, label, score = rows["target"].to_numpy(), rows["label"].to_numpy(), \
            rows["probability"].to_numpy()
        both = len(np.unique(y)) == 2
        results.append({
            "version": str(name), "rows": int(len(rows)), "positives": int(y.sum()),
            "precision": float(precision_score(y, label, zero_division=0)),
            "recall": float(recall_score(y, label, zero_division=0)),
            "f1": float(f1_score(y, label, zero_division=0)),
            "roc_auc": float(roc_auc_score(y, score)) if both else None,
            "first": rows["logged_at"].min(), "last": rows["logged_at"].max()})
    return sorted(results, key=lambda r: version_order(r["version"]))
