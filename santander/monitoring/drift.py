"""Drift: the logged traffic against the version's reference sample, with Evidently.

`santander monitor` compares the 200 features and the score (`probability`) of the rows a
version answered (since a time, if given) with the training rows it keeps
(santander/reference.py). Evidently picks each column's test by its size and kind
(Kolmogorov-Smirnov for small samples, normed Wasserstein distance for large ones) and says
whether the column drifted; the traffic has drifted when the share of drifted columns passes
a threshold. Written under the reports folder, atomically:
    monitor-<time>.html   Evidently's report
    monitor-<time>.json   the summary (the verdict, the drifted columns, positive rates)
    drift.prom            the latest gauges, in Prometheus' text format, for node_exporter's
                          textfile collector (a cron job has no port to be scraped on)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from santander.atomic import staged_file
from santander.config import MIN_MONITORED_ROWS
from santander.errors import DataError
from santander.schema import FEATURES, OUTPUT_PROBABILITY

COLUMNS = [*FEATURES, OUTPUT_PROBABILITY]
PROM_FILE = "drift.prom"


def _evidently():
    """Evidently's Report, Dataset, DataDefinition and DataDriftPreset, telemetry off."""
    # Evidently reports usage over the network unless told not to (both switches: its new
    # and its legacy code read different ones).
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    _pandas_compatibility()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    return Report, Dataset, DataDefinition, DataDriftPreset


def _pandas_compatibility() -> None:
    """Evidently 0.7.23 imports `infer_dtype_from_object` from pandas' internals, which
    pandas 3 removed. It maps a dtype to its scalar type; given back here so Evidently
    imports. tests/test_monitoring.py checks Evidently's verdicts against scipy's tests, and
    fails once Evidently no longer needs this."""
    import pandas.core.dtypes.common as common
    if not hasattr(common, "infer_dtype_from_object"):
        common.infer_dtype_from_object = lambda dtype: np.dtype(dtype).type


@dataclass(frozen=True)
class DriftResult:
    summary: dict
    html: Path
    json: Path
    prom: Path

    @property
    def drifted(self) -> bool:
        return self.summary["drifted"]

    def verdict(self) -> str:
        s = self.summary
        return (f"version {s['version']}: {s['drifted_columns']} of {s['columns']} columns "
                f"drifted ({s['drifted_share']:.1%}, threshold {s['threshold']:.0%}) over "
                f"{s['current_rows']:,} logged rows{' since ' + s['since'] if s['since'] else ''}"
                f": {'DRIFT' if s['drifted'] else 'no drift'}; score "
                f"{'drifted' if s['score']['drifted'] else 'stable'}, positive rate "
                f"{s['positive_rate']['current']:.1%} (reference "
                f"{s['positive_rate']['reference']:.1%}); report {self.html}")


def compare(reference: pd.DataFrame, current: pd.DataFrame, threshold: float):
    """(per-column results, Evidently's snapshot). Each result: method, score, column
    threshold, drifted."""
    Report, Dataset, DataDefinition, DataDriftPreset = _evidently()
    definition = DataDefinition(numerical_columns=COLUMNS)
    # Evidently's correlation plots divide by a zero spread for constant columns: harmless.
    with np.errstate(divide="ignore", invalid="ignore"):
        snapshot = Report([DataDriftPreset(drift_share=threshold)]).run(
            current_data=Dataset.from_pandas(current[COLUMNS], data_definition=definition),
            reference_data=Dataset.from_pandas(reference[COLUMNS], data_definition=definition))
    columns, counted = {}, None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith(":ValueDrift"):
            column, method, limit = config["column"], config["method"], config["threshold"]
            score = float(metric["value"])
            # Evidently's rule: a p-value drifts at or below its threshold, a distance at or
            # above it (checked against its own count below).
            drifted = score <= limit if "p_value" in method else score >= limit
            columns[column] = {"method": method, "score": score, "threshold": limit,
                               "drifted": bool(drifted)}
        elif kind.endswith(":DriftedColumnsCount"):
            counted = int(metric["value"]["count"])
    if set(columns) != set(COLUMNS) or counted != sum(r["drifted"] for r in columns.values()):
        raise RuntimeError("Evidently's drift report is not in the format this code reads "
                           f"({len(columns)} columns, drifted count {counted})")
    return columns, snapshot


def monitor(current: pd.DataFrame, reference: pd.DataFrame, version: str, threshold: float,
            reference_threshold: float, out_dir: Path, since: datetime | None = None,
            min_rows: int = MIN_MONITORED_ROWS) -> DriftResult:
    """Compare, write the report, the summary and the gauges under `out_dir`."""
    if len(current) < min_rows:
        raise DataError(f"version {version} has {len(current):,} logged row(s)"
                        f"{' since ' + since.isoformat() if since else ''}; drift needs at "
                        f"least {min_rows}")
    columns, snapshot = compare(reference, current, threshold)
    drifted = sorted((c for c, r in columns.items() if r["drifted"]),
                     key=lambda c: FEATURES.index(c) if c in FEATURES else -1)
    share = len(drifted) / len(columns)
    summary = {
        "version": str(version),
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "since": since.isoformat(timespec="seconds") if since else None,
        "current_rows": int(len(current)), "reference_rows": int(len(reference)),
        "columns": len(columns), "drifted_columns": len(drifted),
        "drifted_share": share, "threshold": threshold,
        "score": columns[OUTPUT_PROBABILITY],
        "positive_rate": {
            "current": float(current["label"].mean()),
            "reference": float((reference[OUTPUT_PROBABILITY] >= reference_threshold).mean())},
        "drifted": share > threshold,
        "drifted_column_names": drifted,
        "per_column": columns,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    html, summary_path = out_dir / f"monitor-{stamp}.html", out_dir / f"monitor-{stamp}.json"
    with staged_file(html) as staging:
        snapshot.save_html(str(staging))
    with staged_file(summary_path) as staging:
        Path(staging).write_text(json.dumps(summary, indent=2) + "\n")
    prom = write_gauges(out_dir / PROM_FILE, summary)
    return DriftResult(summary, html, summary_path, prom)


def write_gauges(path: Path, summary: dict) -> Path:
    """The drifted share and the positive-prediction rate, as gauges in a textfile."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
    registry = CollectorRegistry()
    labels = {"model_version": summary["version"]}
    for name, text, value in (
            ("santander_drifted_share", "share of columns drifted from the reference sample",
             summary["drifted_share"]),
            ("santander_drift_detected", "1 if the drifted share passed its threshold",
             float(summary["drifted"])),
            ("santander_positive_prediction_rate", "share of logged rows labelled positive",
             summary["positive_rate"]["current"])):
        Gauge(name, text, list(labels), registry=registry).labels(**labels).set(value)
    write_to_textfile(str(path), registry)     # itself writes aside, then renames
    return path


def monitor_version(engine, repository: str | Path, name: str, version: str | None,
                    since: datetime | None, threshold: float,
                    reports_root: str | Path) -> DriftResult:
    """`santander monitor`: `version` (default: the newest with logged rows) against its own
    reference sample, the report under `reports_root/<name>/<version>/`."""
    from santander.layout import get_version, read_model_settings
    from santander.prediction_log.readers import logged_versions, read_predictions
    from santander.reference import read_reference
    if version is None:
        logged = logged_versions(engine, name)
        if not logged:
            raise DataError(f"nothing of {name} has been logged yet")
        version = logged[-1]
    folder = get_version(repository, version, name)
    served_threshold = float(read_model_settings(folder.folder)["parameters"]["extra"]
                             ["threshold"])
    return monitor(read_predictions(engine, name, str(folder.number), since),
                   read_reference(folder.folder), str(folder.number), threshold,
                   served_threshold, Path(reports_root) / name / str(folder.number),
                   since=since)
