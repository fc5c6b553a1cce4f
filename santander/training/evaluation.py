"""Holdout evaluation of the refitted winner: metrics, classification report, plots, JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: runs on servers and in CI without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score, classification_report, confusion_matrix, f1_score,
    precision_recall_curve, precision_score, recall_score, roc_auc_score, roc_curve)

from santander.atomic import publish, staged_folder  # noqa: E402

PLOTS = ("roc.png", "precision_recall.png", "f1_vs_threshold.png", "cv_comparison.png")


def holdout_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, Any]:
    predicted = (proba >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, predicted, labels=[0, 1]).ravel()
    return {
        "threshold": float(threshold),
        "rows": int(len(y_true)),
        "positives": int(y_true.sum()),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "f1_at_0.5": float(f1_score(y_true, proba >= 0.5, zero_division=0)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "classification_report": classification_report(
            y_true, predicted, labels=[0, 1], target_names=["no transaction", "transaction"],
            output_dict=True, zero_division=0),
    }


def plot_roc(y_true, proba, ax) -> None:
    fpr, tpr, _ = roc_curve(y_true, proba)
    ax.plot(fpr, tpr, label=f"ROC AUC {roc_auc_score(y_true, proba):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend(loc="lower right")


def plot_precision_recall(y_true, proba, threshold, ax) -> None:
    precision, recall, _ = precision_recall_curve(y_true, proba)
    ax.plot(recall, precision, label=f"PR AUC {average_precision_score(y_true, proba):.3f}")
    predicted = proba >= threshold
    ax.scatter([recall_score(y_true, predicted, zero_division=0)],
               [precision_score(y_true, predicted, zero_division=0)], color="red", zorder=3,
               label=f"tuned threshold {threshold:.3f}")
    ax.axhline(y_true.mean(), linestyle="--", color="grey", label="positive rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    ax.legend(loc="upper right")


def plot_f1_vs_threshold(y_true, proba, threshold, ax) -> None:
    grid = np.quantile(proba, np.linspace(0.0, 0.999, 200))
    ax.plot(grid, [f1_score(y_true, proba >= t, zero_division=0) for t in grid])
    ax.axvline(threshold, color="red", linestyle="--", label=f"tuned {threshold:.3f}")
    ax.axvline(0.5, color="grey", linestyle=":", label="0.5")
    ax.set(xlabel="decision threshold", ylabel="F1", title="F1 vs threshold (holdout)")
    ax.legend()


def plot_cv_comparison(candidates: list[dict[str, Any]], ax) -> None:
    names = [c["family"] for c in candidates]
    ax.barh(names, [c["f1"]["mean"] for c in candidates],
            xerr=[c["f1"]["std"] for c in candidates], color="tab:blue", alpha=0.8)
    ax.invert_yaxis()
    ax.set(xlabel="F1 at tuned threshold (5-fold mean ± std)", title="Cross-validation")


def cv_table(candidates: list[dict[str, Any]]):
    """One row per family: the figures the selection ranked them by."""
    import pandas as pd
    return pd.DataFrame([{
        "family": c["family"], "params": c["params"],
        "f1": f"{c['f1']['mean']:.4f} ± {c['f1']['std']:.4f}",
        "roc_auc": f"{c['roc_auc']['mean']:.4f} ± {c['roc_auc']['std']:.4f}",
        "pr_auc": f"{c['pr_auc']['mean']:.4f} ± {c['pr_auc']['std']:.4f}",
        "threshold": round(c["threshold"], 4), "fit_s": round(c["fit_seconds"], 2),
    } for c in candidates]).set_index("family")


def save_plots(out_dir: Path, y_true, proba, threshold, candidates) -> list[str]:
    drawers = {
        "roc.png": lambda ax: plot_roc(y_true, proba, ax),
        "precision_recall.png": lambda ax: plot_precision_recall(y_true, proba, threshold, ax),
        "f1_vs_threshold.png": lambda ax: plot_f1_vs_threshold(y_true, proba, threshold, ax),
        "cv_comparison.png": lambda ax: plot_cv_comparison(candidates, ax),
    }
    for name, draw in drawers.items():
        fig, ax = plt.subplots(figsize=(6, 4.5))
        draw(ax)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
    return list(drawers)


def write_report(report_dir: str | Path, report: dict[str, Any], y_true: np.ndarray,
                 proba: np.ndarray) -> Path:
    """report.json and the plots, written into a temporary folder and renamed into place."""
    report_dir = Path(report_dir)
    with staged_folder(report_dir.parent, prefix=f".{report_dir.name}.") as staging:
        plots = save_plots(staging, y_true, proba, report["holdout"]["threshold"],
                           report["candidates"])
        report = {**report, "plots": plots}
        (staging / "report.json").write_text(json.dumps(report, indent=2, default=_jsonable))
        if report_dir.exists():
            shutil.rmtree(report_dir)
        publish(staging, report_dir)
    return report_dir


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
