"""Export: the only writer of model versions in the MLServer model repository
(santander.layout describes it).

A version is written into a hidden staging folder beside the versions (MLServer's scan skips
hidden folders) and renamed into place, so a failed export leaves no half version.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from santander import artifact
from santander.atomic import publish, staged_folder
from santander.config import (MAX_BATCH_SIZE, MAX_BATCH_TIME, MAX_REQUEST_BYTES,
                              MAX_REQUEST_ROWS, MODEL_NAME, RUNTIME_IMPLEMENTATION,
                              SERVER_SETTINGS)
from santander.layout import (DEFAULT_FILE, SETTINGS_FILE, DefaultChoice, list_versions,
                              models_dir, read_default, write_default)
from santander.reference import write_reference
from santander.schema import (INPUT_NAME, N_FEATURES, OUTPUT_LABEL, OUTPUT_PROBABILITY)
from santander.errors import ExportError


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
                      "limits": {"max_rows": MAX_REQUEST_ROWS,
                                 "max_body_bytes": MAX_REQUEST_BYTES},
                      "model_card": card},
        },
    }


def withdraw_version(version_dir: Path) -> None:
    """Take a just-published version back: hidden by one rename (MLServer's scan skips hidden
    folders), then removed."""
    hidden = version_dir.with_name(f".withdrawn-{version_dir.name}-{os.getpid()}")
    os.rename(version_dir, hidden)
    shutil.rmtree(hidden, ignore_errors=True)
    # The first version's export made it the default: a default with nothing to serve goes too.
    repository, name = version_dir.parents[2], version_dir.parent.name
    choice = read_default(repository, name)
    if choice.version == int(version_dir.name) and not choice.previous:
        (version_dir.parent / DEFAULT_FILE).unlink(missing_ok=True)


def export_version(estimator: Any, artifact_format: str, threshold: float,
                   card: dict[str, Any], repository: str | Path, name: str = MODEL_NAME,
                   reference: pd.DataFrame | None = None) -> Path:
    """Write the next version of `name` and return its folder. `reference`: its reference
    sample for drift monitoring (santander/reference.py), written beside the artifact.

    A version does not become the default by being exported (docs/rollout.md): the first one
    is, and later ones wait for `santander promote`. A repository exported before defaults were
    chosen gets its current default (its newest active version) written down first."""
    ensure_server_settings(repository)
    parent = models_dir(repository, name)
    # Listed only when the default is unchosen: reading every version's settings on each export
    # would make an export's cost grow with the repository.
    unchosen = not (parent / DEFAULT_FILE).exists()
    before = ([v.number for v in list_versions(repository, name) if not v.retired]
              if unchosen else [])
    try:
        with staged_folder(parent, prefix=".staging-") as staging:
            path = artifact.save(estimator, artifact_format, staging)
            if reference is not None:
                write_reference(reference, staging)
            while True:
                taken = [int(p.name) for p in parent.iterdir() if p.name.isdigit()]
                version = str(max(taken, default=0) + 1)
                settings = model_settings(name, version, path, artifact_format, threshold,
                                          {**card, "version": version})
                # Written last: a folder without it is never taken for a version.
                (staging / SETTINGS_FILE).write_text(
                    json.dumps(settings, indent=2, default=str) + "\n")
                target = parent / version
                try:
                    publish(staging, target)   # fails if a concurrent export took the number
                    if unchosen and not (parent / DEFAULT_FILE).exists():
                        write_default(repository, DefaultChoice(max(before, default=int(version))),
                                      name)
                    return target
                except OSError:
                    if not target.exists():
                        raise
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"export to {parent} failed: {exc}") from exc
