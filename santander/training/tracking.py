"""MLflow tracking of every training and retraining run.

One run per exported version: the winner's parameters, holdout metrics, the report and its
plots, the version's path and data fingerprint; one nested run per candidate family with its
parameters, per-fold scores (one step per fold) and its halving history.

Embedded default: a SQLite store under `mlruns/` in the working directory (no server needed).
`MLFLOW_TRACKING_URI` points it elsewhere, e.g. at a tracking server. `SANTANDER_TRACKING=off`
turns it off. Tracking never fails a training run: a problem is one warning, and the version
is exported all the same.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from santander.config import EXPERIMENT_NAME, TRACKING_DIR

logger = logging.getLogger(__name__)


class TrackingWarning(UserWarning):
    """Tracking failed; the training run itself did not."""


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(Path(TRACKING_DIR) / 'mlflow.db').resolve()}"


def enabled() -> bool:
    return os.environ.get("SANTANDER_TRACKING", "on").lower() not in ("off", "0", "false", "no")


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # Artifacts beside the embedded store, wherever the run was started from.
        location = (Path(TRACKING_DIR) / "artifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def _flat(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(f"{prefix}{key}.", value))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def log_version(report: dict[str, Any], report_dir: Path, version_dir: Path,
                experiment: str = EXPERIMENT_NAME) -> str | None:
    """Log one exported version; return the MLflow run id, or None if tracking failed."""
    if not enabled():
        return None
    try:
        return _log_version(report, Path(report_dir), Path(version_dir), experiment)
    except Exception as exc:   # any failure of the tracking side, by design
        warnings.warn(f"MLflow tracking failed ({type(exc).__name__}: {exc}); the training "
                      f"run completed and version {version_dir.name} was exported",
                      TrackingWarning, stacklevel=2)
        return None


def _log_version(report: dict[str, Any], report_dir: Path, version_dir: Path,
                 experiment: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri())
    experiment_id = _experiment_id(client, experiment)
    card = report["model_card"]
    data = card["data"]
    kind = "retrain" if "retraining" in card else "train"
    tags = {"santander.kind": kind, "santander.model": version_dir.parent.name,
            "santander.version": str(card.get("version", version_dir.name)),
            "santander.version_dir": str(version_dir.resolve()),
            "santander.data_fingerprint": data["fingerprint"],
            "mlflow.runName": f"{kind} {version_dir.parent.name} v{version_dir.name}"}
    run = client.create_run(experiment_id, tags=tags)
    run_id = run.info.run_id
    params = {"winner.family": card["family"], "winner.threshold": card["threshold"],
              **_flat("winner.", {"hyperparameters": card["hyperparameters"]}),
              "data.source": data["source"], "data.rows": data["rows"],
              "data.positives": data["positives"], "data.fingerprint": data["fingerprint"],
              "data.quick": data["quick"], "version": version_dir.name,
              "version_dir": str(version_dir.resolve()), "cv.folds": card["cv"]["folds"]}
    if "retraining" in card:
        retraining = card["retraining"]
        params.update({"retrain.base_version": retraining["base_version"],
                       "retrain.reselect": retraining["reselect"],
                       "retrain.data": retraining["data"]})
    metrics = {**_flat("holdout.", {k: v for k, v in report["holdout"].items()
                                    if isinstance(v, (int, float))}),
               **_flat("cv.", card["cv"]),
               **{f"seconds.{k}": v for k, v in report.get("timings_seconds", {}).items()}}
    _log_batch(client, run_id, params, metrics)
    for candidate in report["candidates"]:
        _log_candidate(client, experiment_id, run_id, candidate)
    client.log_artifacts(run_id, str(report_dir), artifact_path="report")
    client.log_artifact(run_id, str(version_dir / "model-settings.json"), artifact_path="model")
    client.set_terminated(run_id)
    logger.info("MLflow run %s (%s)", run_id, tracking_uri())
    return run_id


def _log_candidate(client, experiment_id: str, parent_id: str, candidate: dict) -> None:
    from mlflow.entities import Metric
    tags = {"mlflow.parentRunId": parent_id, "mlflow.runName": candidate["family"],
            "santander.kind": "candidate"}
    child = client.create_run(experiment_id, tags=tags).info.run_id
    params = {"family": candidate["family"], "threshold": candidate["threshold"],
              "rows": candidate["rows"], **_flat("", candidate["params"])}
    summary = {f"cv.{name}.{stat}": candidate[name][stat]
               for name in ("f1", "roc_auc", "pr_auc") for stat in ("mean", "std")}
    summary["fit_seconds"] = candidate["fit_seconds"]
    _log_batch(client, child, params, summary)
    now = int(time.time() * 1000)
    per_fold = [Metric(f"fold.{name}", float(value), now, step)
                for name, values in candidate["folds"].items()
                for step, value in enumerate(values)]
    per_rung = [Metric("halving.f1", float(entry["f1"]), now, step)
                for step, entry in enumerate(candidate.get("halving", []))]
    client.log_batch(child, metrics=per_fold + per_rung)
    client.log_dict(child, {"halving": candidate.get("halving", [])}, "halving.json")
    client.set_terminated(child)


def _log_batch(client, run_id: str, params: dict[str, Any], metrics: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)])


def ui_command(host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """`mlflow ui` on the same store the runs are logged to."""
    beside = Path(sys.executable).with_name("mlflow")
    executable = str(beside) if beside.exists() else (shutil.which("mlflow") or "mlflow")
    return [executable, "ui", "--backend-store-uri", tracking_uri(), "--host", host,
            "--port", str(port)]
