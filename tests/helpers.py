"""Shared by the test modules that talk to a served model."""

from __future__ import annotations

import sys
from pathlib import Path

from santander import artifact
from santander.export import read_model_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import request as client  # noqa: E402,F401  (the top-level request.py, as users run it)


def exported_model(version_dir: Path):
    """The version's artifact, loaded as the runtime loads it."""
    settings = read_model_settings(version_dir)
    return artifact.load(version_dir / settings["parameters"]["uri"],
                         settings["parameters"]["extra"]["artifact_format"])
