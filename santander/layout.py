"""The on-disk layout of a model repository, read by export, the server and the ops tools.

MLServer finds every `model-settings.json` below the folder it is started on:

    <repository>/settings.json                                server settings
    <repository>/models/<name>/<version>/model-settings.json  name, version, runtime, batching, card
    <repository>/models/<name>/<version>/model.ubj            the artifact (native format)
    <repository>/models/<name>/<version>/model.ubj.sha256     its checksum
    <repository>/models/<name>/<version>/RETIRED              present when the version is retired

Versions are whole numbers, so MLServer's "newest" (numeric comparison) is the newest.
A retired version keeps its files; the repository the server reads leaves it out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from santander.config import MODEL_NAME, MODELS_SUBDIR
from santander.errors import ArtifactError

SETTINGS_FILE = "model-settings.json"
RETIRED_MARKER = "RETIRED"


def models_dir(repository: str | Path, name: str = MODEL_NAME) -> Path:
    return Path(repository) / MODELS_SUBDIR / name


def existing_versions(repository: str | Path, name: str = MODEL_NAME) -> list[int]:
    folder = models_dir(repository, name)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir()
                  if p.is_dir() and p.name.isdigit() and (p / SETTINGS_FILE).is_file())


def read_model_settings(version_dir: str | Path) -> dict[str, Any]:
    path = Path(version_dir) / SETTINGS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc


def is_retired(version_dir: str | Path) -> bool:
    return (Path(version_dir) / RETIRED_MARKER).exists()
