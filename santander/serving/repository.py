"""A model repository that leaves out retired versions and damaged ones.

Retired versions (a `RETIRED` marker, see `santander.layout`) keep their files but are not
offered, so neither start-up nor a repository `load` serves them.

MLServer stops the whole server when one model fails to load at start-up; with this
repository (`model_repository_implementation` in deploy/settings.json) a damaged version is
skipped with one clear log line and every other version keeps serving. The runtime checks the
checksum again at load, for servers that use another repository.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List

from mlserver.errors import MLServerError
from mlserver.repository import SchemalessModelRepository
from mlserver.settings import ModelSettings
from mlserver.utils import get_model_uri, to_absolute_path

from santander import artifact
from santander.errors import ArtifactError
from santander.layout import is_retired

logger = logging.getLogger("mlserver")


def _version_folder(settings: ModelSettings) -> Path | None:
    """The folder of the version these settings describe: where its artifact `uri` points,
    resolved by MLServer against the settings file (the artifact need not exist)."""
    uri = settings.parameters.uri if settings.parameters else None
    return Path(to_absolute_path(settings, uri)).parent if uri else None


async def damage(settings: ModelSettings) -> str | None:
    """Why this version's artifact cannot be served, or None if it is intact."""
    extra = (settings.parameters.extra or {}) if settings.parameters else {}
    if "artifact_format" not in extra:
        return None  # not one of ours: nothing to check
    try:
        artifact.verify(Path(await get_model_uri(settings)))
    except (ArtifactError, MLServerError) as exc:
        return str(exc)
    return None


class VerifiedRepository(SchemalessModelRepository):
    async def list(self) -> List[ModelSettings]:
        offered = []
        for settings in await super().list():
            version = settings.parameters.version if settings.parameters else None
            folder = _version_folder(settings)
            if folder is not None and is_retired(folder):
                logger.info(f"Not loading version {version} of model '{settings.name}': retired")
                continue
            problem = await damage(settings)
            if problem is None:
                offered.append(settings)
            else:
                logger.error(f"Not loading version {version} of model '{settings.name}': "
                             f"{problem}")
        return offered
