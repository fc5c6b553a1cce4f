"""Model artifacts on disk: native formats where the library has one, a sha256 beside each.

Export writes them (`save`); the loader reads them (santander/loader.py), after
`verify`. Imports no training code; a model library is imported only for the format in hand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


from santander.errors import ArtifactError

FILENAMES = {"xgboost": "model.ubj", "lightgbm": "model.txt", "additive": "model.npz",
             "joblib": "model.joblib"}
CHECKSUM_SUFFIX = ".sha256"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(estimator: Any, artifact_format: str, folder: Path) -> Path:
    """Write the fitted estimator and `<file>.sha256` (sha256sum format) into folder."""
    path = folder / FILENAMES[artifact_format]
    # Boosters come inside an early-stopping wrapper; the library's model is its estimator_.
    model = getattr(estimator, "estimator_", estimator)
    if artifact_format == "xgboost":
        booster = model.get_booster()
        rounds = getattr(estimator, "best_iteration_", None)
        # XGBoost keeps the rounds past the best one; the served model stops where CV did.
        (booster[:rounds] if rounds else booster).save_model(path)
    elif artifact_format == "lightgbm":
        model.booster_.save_model(path)     # LightGBM saves up to its best iteration
    elif artifact_format == "additive":
        estimator.table_.save(path)         # plain arrays: no pickle, no class of ours
    else:
        import joblib
        joblib.dump(estimator, path)
    write_checksum(path)
    return path


def write_checksum(path: Path) -> None:
    """`<file>.sha256` beside the file, in sha256sum's format: what `verify` checks."""
    path.with_name(path.name + CHECKSUM_SUFFIX).write_text(f"{sha256_file(path)}  {path.name}\n")


def verify(path: Path) -> None:
    """Raise ArtifactError unless the artifact exists and matches its recorded sha256."""
    checksum_file = path.with_name(path.name + CHECKSUM_SUFFIX)
    if not path.is_file():
        raise ArtifactError(f"artifact {path} is missing")
    if not checksum_file.is_file():
        raise ArtifactError(f"checksum file {checksum_file} is missing")
    expected = (checksum_file.read_text().split() or [""])[0]
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"artifact {path} is corrupted: sha256 {actual} != recorded {expected}")
