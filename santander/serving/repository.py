"""A model repository that leaves out retired versions and damaged ones, and offers the
default version a second time, without a version number.

Retired versions (a `RETIRED` marker, see `santander.layout`) keep their files but are not
offered, so neither start-up nor a repository `load` serves them.

MLServer answers a request that names no version with the model entry that has none, when one
is loaded, before any numbered one. So the default version (`santander promote`, kept in the
repository's `default.json`; export starts it at the first version) is offered once more with
no version and a `serves_version` naming it: requests without a version go to it, every active
version still answers at its own path, and a restart serves the same default. The entry comes
first, so it is registered before the numbered ones and never replaces one of them
(docs/rollout.md says why that matters).

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
from santander.config import SERVES_VERSION_SETTING, SHADOW_SETTING
from santander.errors import ArtifactError, VersionError
from santander.layout import (DefaultChoice, default_version, is_retired, read_default, read_shadow,
                              repository_of)

logger = logging.getLogger("mlserver")


def _version_folder(settings: ModelSettings) -> Path | None:
    """The folder of the version these settings describe: where its artifact `uri` points,
    resolved by MLServer against the settings file (the artifact need not exist)."""
    uri = settings.parameters.uri if settings.parameters else None
    return Path(to_absolute_path(settings, uri)).parent if uri else None


def _is_ours(settings: ModelSettings) -> bool:
    """Exported by this project (another runtime's model is MLServer's business)."""
    return "artifact_format" in ((settings.parameters.extra or {}) if settings.parameters else {})


async def damage(settings: ModelSettings) -> str | None:
    """Why this version's artifact cannot be served, or None if it is intact."""
    if not _is_ours(settings):
        return None  # nothing to check
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
        return [*_default_entries(offered), *offered]


def _default_entries(offered: List[ModelSettings]) -> List[ModelSettings]:
    """For each model name of ours, a copy of its default version's settings with no version."""
    ours = [s for s in offered if _is_ours(s) and str(s.parameters.version).isdigit()]
    entries = []
    for name in dict.fromkeys(settings.name for settings in ours):
        numbered = {int(s.parameters.version): s for s in ours if s.name == name}
        repository = repository_of(_version_folder(next(iter(numbered.values()))))
        try:
            choice = read_default(repository, name)
        except VersionError as exc:
            logger.error(f"{exc}; the newest version of model '{name}' is its default")
            choice = DefaultChoice()
        chosen = default_version(sorted(numbered), choice)
        if choice.version not in (None, chosen):
            logger.error(f"Default version {choice.version} of model '{name}' is not served "
                         f"(retired or damaged): version {chosen} is the default")
        entry = numbered[chosen].model_copy(deep=True)
        entry.parameters.version = None
        entry.parameters.extra = {**(entry.parameters.extra or {}),
                                  SERVES_VERSION_SETTING: str(chosen),
                                  **_shadow_setting(numbered, chosen, repository, name)}
        entries.append(entry)
    return entries


def _shadow_setting(numbered: dict[int, ModelSettings], default: int, repository: Path,
                    name: str) -> dict:
    """The default entry's SHADOW_SETTING: the shadow version's artifact and settings, for the
    runtime to load beside the default's (none when no shadow is chosen or it is not served)."""
    try:
        shadow = read_shadow(repository, name)
    except VersionError as exc:
        logger.error(f"{exc}: no shadow for model '{name}'")
        return {}
    if shadow is None:
        return {}
    if shadow.version == default or shadow.version not in numbered:
        logger.error(f"Shadow version {shadow.version} of model '{name}' is not scored: it is "
                     "the default, retired or damaged")
        return {}
    settings = numbered[shadow.version]
    return {SHADOW_SETTING: {"version": str(shadow.version), "rate": shadow.rate,
                             "uri": to_absolute_path(settings, settings.parameters.uri),
                             "extra": settings.parameters.extra}}
