"""What the app shows and does, without Streamlit: scoring through the running server (V2 REST),
the versions (the repository and MLServer's repository API), and the prediction log's view of
how they do. The page (santander/app/page.py) only lays it out; tests call this directly.

Every failure a person can cause or meet (server down, bad file, version gone, no log yet)
is an `AppError` with one line for the page.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from santander import config
from santander.errors import SantanderError
from santander.schema import FEATURES, ID_COLUMN, OUTPUT_CONTRIBUTIONS

SERVER_ENV = "SANTANDER_APP_SERVER"
REPOSITORY_ENV = "SANTANDER_APP_REPOSITORY"
MAX_UPLOAD_ROWS = 10_000        # rows scored from one upload, in requests of UPLOAD_BATCH
UPLOAD_BATCH = 1_000
TOP_CONTRIBUTIONS = 10


class AppError(Exception):
    """Something the page says in one line, instead of a traceback."""


@dataclass(frozen=True)
class Sources:
    """Where the app looks: the server's REST address and the model repository."""
    server_url: str
    repository: Path
    model: str = config.MODEL_NAME

    @classmethod
    def from_environment(cls) -> Sources:
        return cls(os.environ.get(SERVER_ENV,
                                  f"http://{config.SERVER_HOST}:{config.HTTP_PORT}"),
                   Path(os.environ.get(REPOSITORY_ENV, str(config.DEPLOY_DIR))))


def _one_line(call, *args, **kwargs):
    """Run `call`; the project's own errors become an AppError with their message."""
    from santander.v2_client import ClientError
    try:
        return call(*args, **kwargs)
    except (ClientError, SantanderError) as exc:
        raise AppError(str(exc)) from None


# Scoring ------------------------------------------------------------------------------------

def served_versions(sources: Sources) -> list[str]:
    """The versions the server has loaded, oldest first."""
    from santander.v2_client import V2Client
    versions = _one_line(V2Client(sources.server_url).loaded_versions, sources.model)
    if not versions:
        raise AppError(f"the server at {sources.server_url} serves no version of "
                       f"{sources.model!r}: promote one on the Versions page")
    return versions


def sample_row(sources: Sources) -> pd.DataFrame:
    """One training row (ID_code and var_0..var_199) to start the form from: the first row of
    the newest active version's reference sample."""
    from santander.layout import list_versions
    from santander.reference import read_reference
    for version in reversed(_one_line(list_versions, sources.repository, sources.model)):
        if version.retired:
            continue
        try:
            reference = read_reference(version.folder)
        except SantanderError:
            continue
        row = reference.head(1)
        ids = row[ID_COLUMN] if ID_COLUMN in row else pd.Series([f"sample_v{version.number}"])
        return pd.DataFrame({ID_COLUMN: ids.astype(str).to_numpy(),
                             **{f: row[f].to_numpy(np.float64) for f in FEATURES}})
    raise AppError(f"no active version in {sources.repository} has a reference sample to "
                   "start from; train one (santander train)")


def read_upload(name: str, content: bytes) -> pd.DataFrame:
    """An uploaded CSV or parquet as ID_code and var_0..var_199, checked as request.py checks
    a file: one line naming the problem."""
    from santander.frames import load_features
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise AppError(f"{name}: upload a .csv or .parquet file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        try:
            X, ids = load_features(path)
        except SantanderError as exc:
            raise AppError(str(exc).replace(str(path), name)) from None
        except Exception as exc:  # noqa: BLE001 - a file pandas cannot parse at all
            raise AppError(f"{name}: not a readable {suffix[1:]} file ({exc})") from None
    if len(X) == 0:
        raise AppError(f"{name}: no rows")
    if len(X) > MAX_UPLOAD_ROWS:
        raise AppError(f"{name}: {len(X):,} rows; the page scores up to {MAX_UPLOAD_ROWS:,} "
                       "(request.py or any V2 client takes more)")
    codes = ids if ids is not None else [f"row_{i}" for i in range(len(X))]
    return pd.DataFrame({ID_COLUMN: [str(c) for c in codes],
                         **{f: X[:, j] for j, f in enumerate(FEATURES)}})


@dataclass
class Scores:
    """One version's answer for the scored rows."""
    version: str
    threshold: float | None
    table: pd.DataFrame                 # ID_code, probability, label
    contributions: np.ndarray | None    # (n, 201): per feature, then the bias
    note: str = ""                      # why there are no contributions, if asked for


def score(sources: Sources, rows: pd.DataFrame, versions: list[str],
          explain: bool = False) -> list[Scores]:
    """Each version's answer for `rows` (ID_code and the 200 features), through V2 REST."""
    from santander.v2_client import DEFAULT_OUTPUTS, V2Client
    client = V2Client(sources.server_url)
    if not versions:
        raise AppError("pick at least one version")
    X = rows[list(FEATURES)].to_numpy(np.float64)
    codes = rows[ID_COLUMN].astype(str).tolist()
    results = []
    for version in versions:
        metadata = _one_line(client.metadata, sources.model, version)
        threshold = (metadata.get("parameters") or {}).get("threshold")
        outputs = (*DEFAULT_OUTPUTS, OUTPUT_CONTRIBUTIONS) if explain else DEFAULT_OUTPUTS
        answers, note = [], ""
        for start in range(0, len(X), UPLOAD_BATCH):
            part = slice(start, start + UPLOAD_BATCH)
            try:
                answers.append(_one_line(client.infer, sources.model, version, X[part],
                                         request_id="santander-app", outputs=outputs,
                                         id_codes=codes[part]))
            except AppError as exc:
                if OUTPUT_CONTRIBUTIONS not in outputs or "explanation" not in str(exc):
                    raise
                # This version's family has no exact explanation: score without one.
                outputs, note = DEFAULT_OUTPUTS, str(exc).split(": ", 1)[-1]
                answers.append(_one_line(client.infer, sources.model, version, X[part],
                                         request_id="santander-app", outputs=outputs,
                                         id_codes=codes[part]))
        merged = _merge_outputs(answers)
        contributions = None
        if OUTPUT_CONTRIBUTIONS in merged and not note:
            contributions = np.asarray(merged[OUTPUT_CONTRIBUTIONS],
                                       np.float64).reshape(len(X), -1)
        results.append(Scores(
            version=version, threshold=threshold,
            table=pd.DataFrame({ID_COLUMN: codes,
                                "probability": np.asarray(merged["probability"], np.float64),
                                "label": np.asarray(merged["label"], np.int64)}),
            contributions=contributions, note=note))
    return results


def _merge_outputs(answers: list[dict]) -> dict[str, list]:
    merged: dict[str, list] = {}
    for answer in answers:
        for output in answer["outputs"]:
            merged.setdefault(output["name"], []).extend(output["data"])
    return merged


def top_contributions(contributions: np.ndarray, row: int = 0,
                      n: int = TOP_CONTRIBUTIONS) -> pd.DataFrame:
    """A row's `n` largest contributions by size, in log-odds, largest first (the bias left
    out: it is not a feature)."""
    values = np.asarray(contributions[row][:-1], dtype=np.float64)
    order = np.argsort(-np.abs(values), kind="stable")[:n]
    return pd.DataFrame({"feature": [FEATURES[j] for j in order],
                         "log-odds": values[order]})


# Versions -----------------------------------------------------------------------------------

def versions_table(sources: Sources) -> tuple[pd.DataFrame, bool]:
    """Every version with its state, family, threshold, holdout F1 and ROC AUC, rows and date;
    and whether the server answered."""
    from santander.ops.versions import version_table
    from santander.v2_client import V2Client
    rows, answered = _one_line(version_table, sources.repository, sources.model,
                               V2Client(sources.server_url, timeout=5))
    columns = ["version", "state", "default", "family", "threshold", "holdout_f1",
               "holdout_roc_auc", "rows", "trained_at"]
    return pd.DataFrame(rows, columns=columns), answered


def change_state(sources: Sources, version: int, action: str) -> str:
    """Promote `version` (make it the default) or retire it; the sentence saying what the
    server now serves."""
    from santander.ops.versions import promote, retire
    from santander.v2_client import V2Client
    change = {"promote": promote, "retire": retire}[action]
    chosen, served = _one_line(change, sources.repository, version, sources.model,
                               V2Client(sources.server_url, timeout=300))
    done = (f"version {chosen.number} is the default" if action == "promote"
            else f"retired version {chosen.number}")
    if served is None:
        return (f"{done}; no server at {sources.server_url}: it takes effect when one starts")
    return (f"{done}; the server now serves "
            f"{', '.join(map(str, served)) or 'no version'}")


def report_plots(sources: Sources, version: int) -> list[Path]:
    """The plots training wrote for `version` (ROC, precision-recall, F1 by threshold, the
    cross-validated families)."""
    from santander.layout import reports_dir
    folder = reports_dir(sources.repository) / sources.model / str(version)
    return sorted(folder.glob("*.png"))


# Monitoring ---------------------------------------------------------------------------------

def _log(sources: Sources):
    from santander.prediction_log.readers import open_log
    return _one_line(open_log, sources.repository)


def live_table(sources: Sources) -> pd.DataFrame:
    """Precision, recall, F1 and ROC AUC per version on the rows whose outcome is known."""
    from santander.monitoring.live import live_metrics
    engine = _log(sources)
    try:
        rows = _one_line(live_metrics, engine, sources.model)
    finally:
        engine.dispose()
    columns = ["version", "rows", "positives", "precision", "recall", "f1", "roc_auc"]
    return pd.DataFrame(rows, columns=[*columns, "first", "last"])[columns]


def logged_versions(sources: Sources) -> list[str]:
    """The versions with logged rows, oldest first."""
    from santander.prediction_log.readers import logged_versions as versions_in
    engine = _log(sources)
    try:
        return versions_in(engine, sources.model)
    finally:
        engine.dispose()


@dataclass
class VersionComparison:
    table: pd.DataFrame        # metric, A, B, B - A, low, high (empty without outcomes)
    summary: str               # the rows compared, agreement, score shift
    verdict: str               # the verdict and the figure it rests on


def compare(sources: Sources, a: str, b: str) -> VersionComparison:
    """`santander compare a b`, for the page."""
    from santander.monitoring.compare import METRICS, compare_versions, report_lines
    engine = _log(sources)
    try:
        found = _one_line(compare_versions, engine, sources.model, a, b)
    finally:
        engine.dispose()
    table = pd.DataFrame(
        [(name, *found.metrics[name], found.metrics[name][1] - found.metrics[name][0],
          *found.intervals[name]) for name in METRICS if name in found.metrics],
        columns=["metric", f"A (version {a})", f"B (version {b})", "B - A", "95% low",
                 "95% high"])
    summary = " ".join(report_lines(found, sources.model)[:2])
    return VersionComparison(table, summary, found.why())


def positive_rate(sources: Sources) -> pd.DataFrame:
    """The share of rows labelled positive per version over time (one column a version),
    in minutes for the first two hours of log and in hours after."""
    from sqlalchemy import select
    from santander.layout import version_order
    from santander.prediction_log.tables import predictions
    engine = _log(sources)
    query = (select(predictions.c.logged_at, predictions.c.model_version, predictions.c.label)
             .where(predictions.c.model_name == sources.model))
    try:
        with engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).all(),
                                 columns=["logged_at", "version", "label"])
    finally:
        engine.dispose()
    if frame.empty:
        raise AppError(f"nothing of {sources.model!r} has been logged yet")
    frame["logged_at"] = pd.to_datetime(frame["logged_at"])
    span = frame["logged_at"].max() - frame["logged_at"].min()
    bucket = "min" if span <= pd.Timedelta(hours=2) else "h"
    frame["time"] = frame["logged_at"].dt.floor(bucket)
    table = frame.pivot_table(index="time", columns="version", values="label", aggfunc="mean")
    return table[sorted(table.columns, key=version_order)]


@dataclass
class DriftVerdict:
    line: str
    drifted: bool
    summary_path: Path
    html_path: Path | None


def latest_drift(sources: Sources) -> DriftVerdict | None:
    """The newest `santander monitor` verdict under the repository's reports, if any."""
    from santander.layout import reports_dir
    summaries = sorted(reports_dir(sources.repository).glob("monitor-*.json"))
    if not summaries:
        return None
    path = summaries[-1]
    try:
        summary = json.loads(path.read_text())
        line = (f"version {summary['version']} at {summary['at']}: "
                f"{summary['drifted_columns']} of {summary['columns']} columns drifted "
                f"({summary['drifted_share']:.0%}, threshold {summary['threshold']:.0%}) on "
                f"{summary['current_rows']:,} logged rows: "
                f"{'DRIFT' if summary['drifted'] else 'no drift'}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AppError(f"{path}: unreadable drift summary ({exc})") from None
    html = path.with_suffix(".html")
    return DriftVerdict(line, bool(summary["drifted"]), path, html if html.is_file() else None)


def as_csv(table: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    return buffer.getvalue().encode()
