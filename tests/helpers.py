"""Shared by the test modules that talk to a served model."""

from __future__ import annotations

import sys
from pathlib import Path

from santander.serving.loader import load_version

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import request as client  # noqa: E402,F401  (the top-level request.py, as users run it)


def exported_model(version_dir: Path):
    """The version's artifact, loaded as the runtime loads it."""
    return load_version(version_dir)[0]
