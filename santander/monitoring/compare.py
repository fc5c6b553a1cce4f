"""Two versions compared on the same logged rows: the evidence for promoting one over the other.

The rows are those both versions scored (a shadow scores the default's rows with the same
request id and row index). On the rows whose outcome is known: F1, precision and recall of each
version's own label (its own threshold) and ROC AUC of its probability, each with a paired 95%
interval of the difference B - A:

- F1, precision and recall: the paired bootstrap, 1,000 resamples of the rows, each row
  resampled for both versions at once. These depend only on how many rows fall in each of the
  eight cells (outcome, A's label, B's label), so a resample is one multinomial draw of those
  eight counts: exactly the bootstrap, at no cost per row.
- ROC AUC: DeLong's interval for two correlated AUCs (DeLong, DeLong & Clarke-Pearson 1988), the
  standard closed form for the same rows scored twice, which answers 100,000 rows in a fraction
  of the time a bootstrap of the ranking would take.

The verdict follows F1, the measure selection picks winners by: "B is better" when the whole
interval of F1(B) - F1(A) is above zero, "A is better" when it is below, else "no evidence
either way" (so too with fewer than MIN_LABELLED_ROWS labelled rows). Without outcomes: how
often their labels agree and how far apart their score distributions are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sqlalchemy import select
from sqlalchemy.engine import Engine

from santander.errors import DataError
from santander.monitoring.outcomes import labelled_predictions
from santander.prediction_log.tables import predictions

KEY = ["request_id", "row_index"]
LABEL_METRICS = ("f1", "precision", "recall")
METRICS = (*LABEL_METRICS, "roc_auc")
RESAMPLES = 1000
# Fewer labelled rows than this give no verdict: a bootstrap of a handful of rows can put its
# whole interval on one side of zero by chance.
MIN_LABELLED_ROWS = 100

B_BETTER, A_BETTER, NO_EVIDENCE = "B is better", "A is better", "no evidence either way"


@dataclass
class Comparison:
    a: str
    b: str
    shared_rows: int                  # scored by both
    labelled_rows: int                # ... and with a known outcome
    agreement: float                  # share of shared rows given the same label
    positive_rate: tuple[float, float]
    score_shift: float                # Kolmogorov-Smirnov distance of the two score samples
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)     # name: (A, B)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)   # B - A, 95%

    @property
    def verdict(self) -> str:
        if "f1" not in self.intervals or self.labelled_rows < MIN_LABELLED_ROWS:
            return NO_EVIDENCE
        low, high = self.intervals["f1"]
        return B_BETTER if low > 0 else A_BETTER if high < 0 else NO_EVIDENCE

    def why(self) -> str:
        """The verdict with the figure it rests on, in one line."""
        if "f1" not in self.intervals:
            return (f"{self.verdict}: no outcomes recorded for the {self.shared_rows:,} rows "
                    "both versions scored (santander outcomes)")
        if self.labelled_rows < MIN_LABELLED_ROWS:
            return (f"{self.verdict}: only {self.labelled_rows:,} of the rows both versions "
                    f"scored have an outcome; a verdict needs {MIN_LABELLED_ROWS}")
        (fa, fb), (low, high) = self.metrics["f1"], self.intervals["f1"]
        return (f"{self.verdict}: F1 {fb:.4f} (version {self.b}) against {fa:.4f} "
                f"(version {self.a}) on {self.labelled_rows:,} labelled rows, difference "
                f"95% interval [{low:+.4f}, {high:+.4f}]")


def _scored(engine: Engine, model_name: str, version: str) -> pd.DataFrame:
    """A version's logged rows: key, probability and label (no features)."""
    query = (select(predictions.c.request_id, predictions.c.row_index,
                    predictions.c.probability, predictions.c.label)
             .where(predictions.c.model_name == model_name,
                    predictions.c.model_version == str(version)))
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(),
                             columns=[*KEY, "probability", "label"])
    return frame.dropna(subset=["request_id"]).drop_duplicates(KEY, keep="last")


def shared_rows(engine: Engine, model_name: str, a: str, b: str) -> pd.DataFrame:
    """The rows both versions scored, side by side (probability_a, label_a, ..._b), with
    `target` where the outcome is known (else NaN)."""
    both = _scored(engine, model_name, a).merge(_scored(engine, model_name, b), on=KEY,
                                                suffixes=("_a", "_b"))
    labels = labelled_predictions(engine, model_name, a)[[*KEY, "target"]]
    return both.merge(labels.drop_duplicates(KEY, keep="last"), on=KEY, how="left")


def compare_versions(engine: Engine, model_name: str, a: str, b: str,
                     resamples: int = RESAMPLES, seed: int = 0) -> Comparison:
    a, b = str(a), str(b)
    if a == b:
        raise DataError(f"compare two different versions (both are {a})")
    rows = shared_rows(engine, model_name, a, b)
    if rows.empty:
        raise DataError(f"versions {a} and {b} of '{model_name}' scored no row in common: "
                        f"shadow one of them (santander shadow) and let traffic arrive")
    pa, pb = rows["probability_a"].to_numpy(float), rows["probability_b"].to_numpy(float)
    la, lb = rows["label_a"].to_numpy(int), rows["label_b"].to_numpy(int)
    comparison = Comparison(a, b, len(rows), int(rows["target"].notna().sum()),
                            float(np.mean(la == lb)), (float(la.mean()), float(lb.mean())),
                            _ks_distance(pa, pb))
    labelled = rows["target"].notna().to_numpy()
    if labelled.any():
        y = rows["target"].to_numpy()[labelled].astype(int)
        la, lb, pa, pb = la[labelled], lb[labelled], pa[labelled], pb[labelled]
        cells = np.bincount(4 * y + 2 * la + lb, minlength=8)
        counts = np.vstack([cells, np.random.default_rng(seed).multinomial(
            len(y), cells / len(y), size=resamples)])
        a_scores, b_scores = _label_metrics(counts, a_label=True), _label_metrics(counts, False)
        auc, auc_interval = _delong(y, pa, pb)
        comparison.metrics = {m: (float(a_scores[i, 0]), float(b_scores[i, 0]))
                              for i, m in enumerate(LABEL_METRICS)}
        comparison.metrics["roc_auc"] = auc
        comparison.intervals = {
            m: tuple(float(q) for q in np.percentile(b_scores[i, 1:] - a_scores[i, 1:],
                                                     [2.5, 97.5]))
            for i, m in enumerate(LABEL_METRICS)}
        comparison.intervals["roc_auc"] = auc_interval
    return comparison


def _label_metrics(counts: np.ndarray, a_label: bool) -> np.ndarray:
    """(metric, draw): F1, precision and recall of A's labels (or B's) from the eight cell
    counts of each draw, cell = 4 * outcome + 2 * A's label + B's label."""
    c = counts.reshape(len(counts), 2, 2, 2)                 # outcome, A's label, B's label
    by_label = c.sum(axis=3) if a_label else c.sum(axis=2)  # outcome, that version's label
    tp, fp, fn = by_label[:, 1, 1], by_label[:, 0, 1], by_label[:, 1, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return np.stack([f1, precision, recall])


def _delong(y: np.ndarray, pa: np.ndarray, pb: np.ndarray
            ) -> tuple[tuple[float, float], tuple[float, float]]:
    """(AUC of A, AUC of B), and the 95% interval of AUC(B) - AUC(A) by DeLong's method (NaN
    without both outcomes)."""
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        return (float("nan"), float("nan")), (float("nan"), float("nan"))
    v10, v01, aucs = [], [], []
    for p in (pa, pb):
        every, among_pos, among_neg = (rankdata(p), rankdata(p[positive]),
                                       rankdata(p[~positive]))
        aucs.append((every[positive].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((every[positive] - among_pos) / n)         # each positive's share beaten
        v01.append(1.0 - (every[~positive] - among_neg) / m)  # each negative's share below
    s = np.cov(v10) / m + np.cov(v01) / n
    spread = 1.959964 * np.sqrt(max(s[0, 0] + s[1, 1] - 2 * s[0, 1], 0.0))
    difference = aucs[1] - aucs[0]
    return (float(aucs[0]), float(aucs[1])), (float(difference - spread),
                                              float(difference + spread))


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest gap between the two samples' cumulative distributions."""
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def report_lines(comparison: Comparison, model_name: str) -> list[str]:
    """The comparison as `santander compare` prints it."""
    c = comparison
    lines = [f"versions {c.a} (A) and {c.b} (B) of '{model_name}': {c.shared_rows:,} rows scored "
             f"by both, {c.labelled_rows:,} with a known outcome",
             f"labels agree on {c.agreement:.1%} of them; positive labels {c.positive_rate[0]:.1%}"
             f" (A) and {c.positive_rate[1]:.1%} (B); score distributions {c.score_shift:.3f} "
             "apart (largest gap of their CDFs)"]
    if c.metrics:
        lines += ["", f"{'':<10} {'A':>7} {'B':>7} {'B - A':>8}  95% interval of B - A"]
        for name in METRICS:
            (a, b), (low, high) = c.metrics[name], c.intervals[name]
            lines.append(f"{name.replace('roc_auc', 'ROC AUC'):<10} {a:>7.4f} {b:>7.4f} "
                         f"{b - a:>+8.4f}  [{low:+.4f}, {high:+.4f}]")
        lines.append("")
    return [*lines, f"verdict: {c.why()}"]
