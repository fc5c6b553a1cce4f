"""The on-disk layout of a model repository, read by export, the server and the ops tools.

MLServer finds every `model-settings.json` below the folder it is started on:

    <repository>/settings.json                                server settings
    <repository>/models/<name>/<version>/model-settings.json  name, version, runtime, batching, card
    <repository>/models/<name>/<version>/model.ubj            the artifact (native format)
    <repository>/models/<name>/<version>/model.ubj.sha256     its checksum
    <repository>/models/<name>/<version>/reference.parquet    training rows sampled, for drift
    <repository>/models/<name>/<version>/RETIRED              present when the version is retired
    <repository>/models/<name>/default.json                   the default version the user chose
    <repository>/models/<name>/shadow.json                    the version scoring in its shadow
    <repository>/predictions.sqlite                          the prediction log (by default)

Versions are whole numbers, so MLServer's "newest" (numeric comparison) is the newest.
A retired version keeps its files; the repository the server reads leaves it out. The default
version (the one that answers requests that name none) is the one `default.json` names, or the
newest active version in a repository where none was ever written (docs/rollout.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from santander.atomic import staged_file
from santander.config import MODEL_NAME, MODELS_SUBDIR, REPORTS_SUBDIR
from santander.errors import ArtifactError, VersionError

SETTINGS_FILE = "model-settings.json"
RETIRED_MARKER = "RETIRED"
# A sample of the version's training rows and its scores on them, what drift is measured
# against (santander/reference.py).
REFERENCE_FILE = "reference.parquet"
# {"version": N, "previous": [older defaults, the latest last]}: what `promote` chose and what
# `rollback` returns to.
DEFAULT_FILE = "default.json"
# {"version": N, "rate": R}: version N scores a share R of the default's requests, logged only.
SHADOW_FILE = "shadow.json"


def models_dir(repository: str | Path, name: str = MODEL_NAME) -> Path:
    return Path(repository) / MODELS_SUBDIR / name


def repository_of(version_dir: str | Path) -> Path:
    """The repository holding a version folder (<repository>/models/<name>/<version>)."""
    return Path(version_dir).resolve().parents[2]


def reports_dir(repository: str | Path) -> Path:
    """Where a repository's version reports go by default: inside it, so two repositories
    never share one (MLServer's scan finds no model settings there)."""
    return Path(repository) / REPORTS_SUBDIR


def existing_versions(repository: str | Path, name: str = MODEL_NAME) -> list[int]:
    folder = models_dir(repository, name)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir()
                  if p.is_dir() and p.name.isdigit() and (p / SETTINGS_FILE).is_file())


def version_order(version: str) -> tuple:
    """MLServer's order of versions: numbers as numbers ("10" after "9"), then any text."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def read_model_settings(version_dir: str | Path) -> dict[str, Any]:
    path = Path(version_dir) / SETTINGS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc


def is_retired(version_dir: str | Path) -> bool:
    return (Path(version_dir) / RETIRED_MARKER).exists()


@dataclass
class Version:
    number: int
    folder: Path
    retired: bool
    card: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        card, holdout = self.card, self.card.get("holdout", {})
        data = card.get("data", {})
        return {"version": self.number, "retired": self.retired, "family": card.get("family"),
                "threshold": card.get("threshold"), "holdout_f1": holdout.get("f1"),
                "holdout_roc_auc": holdout.get("roc_auc"), "rows": data.get("rows"),
                "data_fingerprint": data.get("fingerprint"),
                "trained_at": card.get("trained_at"),
                "retrained_from": card.get("retraining", {}).get("base_version")}


def list_versions(repository: str | Path, name: str = MODEL_NAME) -> list[Version]:
    """Every exported version of `name`, oldest first."""
    found = []
    for number in existing_versions(repository, name):
        folder = models_dir(repository, name) / str(number)
        try:
            card = read_model_settings(folder)["parameters"]["extra"].get("model_card", {})
        except (ArtifactError, KeyError, TypeError, AttributeError):
            card = {}                      # unreadable settings: listed, with no card
        found.append(Version(number, folder, is_retired(folder), card))
    return found


def get_version(repository: str | Path, version: int | str | None,
                name: str = MODEL_NAME) -> Version:
    """One version (None: the newest); an unknown one is an error naming those that exist."""
    versions = list_versions(repository, name)
    if not versions:
        raise VersionError(f"model '{name}' has no versions in {models_dir(repository, name)}: "
                           "train one first")
    if version is None:
        return versions[-1]
    for candidate in versions:
        if str(candidate.number) == str(version).strip():
            return candidate
    have = ", ".join(str(v.number) for v in versions)
    raise VersionError(f"model '{name}' has no version {version} (versions: {have})")


@dataclass
class DefaultChoice:
    """The default version the user chose (None: the newest active one), and the defaults it
    replaced, the latest last."""
    version: int | None = None
    previous: list[int] = field(default_factory=list)


def read_default(repository: str | Path, name: str = MODEL_NAME) -> DefaultChoice:
    path = models_dir(repository, name) / DEFAULT_FILE
    if not path.exists():
        return DefaultChoice()
    try:
        data = json.loads(path.read_text())
        return DefaultChoice(int(data["version"]), [int(v) for v in data.get("previous", [])])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VersionError(f"cannot read the default version from {path}: {exc}") from exc


def write_default(repository: str | Path, choice: DefaultChoice, name: str = MODEL_NAME) -> None:
    with staged_file(models_dir(repository, name) / DEFAULT_FILE) as staging:
        staging.write_text(json.dumps({"version": choice.version,
                                       "previous": choice.previous}) + "\n")


def default_version(active: list[int], choice: DefaultChoice) -> int | None:
    """The version that answers requests naming none, of the active (served) ones: the chosen
    one while it is active, else the newest."""
    if choice.version in active:
        return choice.version
    return max(active) if active else None


@dataclass
class ShadowChoice:
    """The version that scores a share (`rate`) of the default's requests, logged only."""
    version: int
    rate: float = 1.0


def read_shadow(repository: str | Path, name: str = MODEL_NAME) -> ShadowChoice | None:
    path = models_dir(repository, name) / SHADOW_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        choice = ShadowChoice(int(data["version"]), float(data["rate"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VersionError(f"cannot read the shadow version from {path}: {exc}") from exc
    if not 0.0 < choice.rate <= 1.0:
        raise VersionError(f"{path}: rate {choice.rate} is not a share of requests "
                           "(more than 0, at most 1)")
    return choice


def write_shadow(repository: str | Path, choice: ShadowChoice | None,
                 name: str = MODEL_NAME) -> None:
    """Record the shadow (None: no shadow)."""
    path = models_dir(repository, name) / SHADOW_FILE
    if choice is None:
        path.unlink(missing_ok=True)
        return
    with staged_file(path) as staging:
        staging.write_text(json.dumps({"version": choice.version, "rate": choice.rate}) + "\n")
