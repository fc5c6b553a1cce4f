"""Export: the only writer of model versions in the MLServer model repository.

Layout (MLServer finds every `model-settings.json` below the folder it is started on):

    deploy/settings.json                               server settings
    deploy/models/<name>/<version>/model-settings.json name, version, runtime, batching, card
    deploy/models/<name>/<version>/model.ubj           the artifact (native format)
    deploy/models/<name>/<version>/model.ubj.sha256    its checksum

A version is written into a hidden staging folder beside the versions (MLServer's scan skips
hidden folders) and renamed into place, so a failed export leaves no half version.
Versions are whole numbers, so MLServer's "newest" (numeric comparison) is the newest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from santander import artifact
from santander.config import (MAX_BATCH_SIZE, MAX_BATCH_TIME, MODEL_NAME, MODELS_SUBDIR,
                              RUNTIME_IMPLEMENTATION)
from santander.data.schema import (INPUT_NAME, N_FEATURES, OUTPUT_LABEL, OUTPUT_PROBABILITY)
from santander.errors import ExportError
from santander.permissions import as_if_created

SERVER_SETTINGS = {
    # Ports are left out on purpose: values here would override MLSERVER_* variables.
    "debug": False,
    "host": "127.0.0.1",
    "parallel_workers": 0,    # one process: a worker pool halves throughput on 2 cores
    "load_models_at_startup": True,
    # Answers are a few hundred bytes: compressing them costs time and saves nothing
    # (measured in bench/serving.py).
    "gzip_enabled": False,
    # Skips a version whose artifact is damaged instead of letting it stop the server.
    "model_repository_implementation": "santander.repository.VerifiedRepository",
}


def models_dir(repository: str | Path, name: str = MODEL_NAME) -> Path:
    return Path(repository) / MODELS_SUBDIR / name


def existing_versions(repository: str | Path, name: str = MODEL_NAME) -> list[int]:
    folder = models_dir(repository, name)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir()
                  if p.is_dir() and p.name.isdigit() and (p / "model-settings.json").is_file())


def ensure_server_settings(repository: str | Path) -> Path:
    """Write deploy/settings.json if it is not there (a user's edits are kept)."""
    path = Path(repository) / "settings.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(SERVER_SETTINGS, indent=2) + "\n")
    return path


def model_settings(name: str, version: str, artifact_path: Path, artifact_format: str,
                   threshold: float, card: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "implementation": RUNTIME_IMPLEMENTATION,
        "max_batch_size": MAX_BATCH_SIZE,
        "max_batch_time": MAX_BATCH_TIME,
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, N_FEATURES]}],
        "outputs": [
            {"name": OUTPUT_PROBABILITY, "datatype": "FP32", "shape": [-1, 1]},
            {"name": OUTPUT_LABEL, "datatype": "INT64", "shape": [-1, 1]},
        ],
        "parameters": {
            "uri": f"./{artifact_path.name}",
            "version": version,
            "extra": {"artifact_format": artifact_format, "threshold": float(threshold),
                      "model_card": card},
        },
    }


def export_version(estimator: Any, artifact_format: str, threshold: float,
                   card: dict[str, Any], repository: str | Path, name: str = MODEL_NAME) -> Path:
    """Write the next version of `name` and return its folder."""
    ensure_server_settings(repository)
    parent = models_dir(repository, name)
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    try:
        path = artifact.save(estimator, artifact_format, staging)
        while True:
            taken = [int(p.name) for p in parent.iterdir() if p.name.isdigit()]
            version = str(max(taken, default=0) + 1)
            settings = model_settings(name, version, path, artifact_format, threshold,
                                      {**card, "version": version})
            # Written last: a folder without it is never taken for a version.
            (staging / "model-settings.json").write_text(
                json.dumps(settings, indent=2, default=str) + "\n")
            target = parent / version
            as_if_created(staging)
            try:
                os.rename(staging, target)   # fails if a concurrent export took the number
                return target
            except OSError:
                if not target.exists():
                    raise
    except Exception as exc:
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"export to {parent} failed: {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def load_exported(version_dir: str | Path) -> tuple[artifact.ProbabilityModel, float]:
    """A version's model (checksum verified) and tuned threshold, as the runtime loads them."""
    settings = read_model_settings(version_dir)
    extra = settings["parameters"]["extra"]
    model = artifact.load(Path(version_dir) / settings["parameters"]["uri"],
                          extra["artifact_format"])
    return model, float(extra["threshold"])


def read_model_settings(version_dir: str | Path) -> dict[str, Any]:
    path = Path(version_dir) / "model-settings.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc
