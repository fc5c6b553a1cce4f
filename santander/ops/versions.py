"""The versions of a served model: what is on disk, what is retired, which one is the default,
what the server has loaded.

Which versions are served, and which answers requests that name none, is kept in the repository
itself, so a restart (or the deploy image) serves the same: a retired version keeps its files
and gets a `RETIRED` marker, which the repository (`santander.serving.repository`) leaves out;
the default is the version `promote` chose last (`default.json`), and `rollback` returns to the
one before it. A running server is told through
MLServer's repository API: `POST /v2/repository/models/<name>/load` loads every version the
repository offers (new ones load beside the old, and the old stay up while already-loaded
ones are reloaded) and unloads the ones it no longer offers; `/unload` drops the name.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from santander import config
from santander.errors import VersionError
from santander.layout import (RETIRED_MARKER, ShadowChoice, Version, default_version,
                              get_version, list_versions, read_default, read_shadow,
                              write_default, write_shadow)
from santander.v2_client import V2Client


def version_table(repository: str | Path, name: str = config.MODEL_NAME,
                  client: V2Client | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Every version's summary (oldest first) with its `state`: "serving" (the server has it
    loaded), "active" (served when a server starts) or "retired"; and whether a server
    answered."""
    versions = list_versions(repository, name)
    served = None
    if versions and client is not None and client.live():
        served = set(served_versions(client, name))
    default = default_version([v.number for v in versions if not v.retired],
                              read_default(repository, name))
    shadow = read_shadow(repository, name)
    rows = []
    for version in versions:
        state = "retired" if version.retired else "active"
        if served is not None and version.number in served:
            state = "serving"
        rows.append({**version.summary(), "state": state, "default": version.number == default,
                     "shadow_rate": shadow.rate if shadow and shadow.version == version.number
                     else None})
    return rows, served is not None


def current_default(repository: str | Path, name: str = config.MODEL_NAME) -> int | None:
    """The version that answers requests naming none (once a server has loaded the
    repository)."""
    return default_version([v.number for v in list_versions(repository, name)
                            if not v.retired], read_default(repository, name))


def mark_retired(version: Version, retired: bool) -> None:
    marker = version.folder / RETIRED_MARKER
    if retired:
        marker.write_text(datetime.now(timezone.utc).isoformat(timespec="seconds") + "\n")
    else:
        marker.unlink(missing_ok=True)
    version.retired = retired


def served_versions(client: V2Client, name: str) -> list[int]:
    """The numbered versions of `name` the server has loaded, oldest first."""
    return [int(v) for v in client.loaded_versions(name) if v.isdigit()]


def sync_server(client: V2Client, repository: str | Path,
                name: str = config.MODEL_NAME) -> list[int]:
    """Make the server serve exactly the repository's active versions; return them."""
    active = [v.number for v in list_versions(repository, name) if not v.retired]
    if active:
        client.load(name)
    else:
        client.unload(name)
    return [v for v in served_versions(client, name) if v in active]


def promote(repository: str | Path, version: int | str, name: str = config.MODEL_NAME,
            client: V2Client | None = None) -> tuple[Version, list[int] | None]:
    """Make `version` the default: serve it (clearing a retirement), have it answer requests
    that name no version, and remember the default it replaces for `rollback`.

    Returns the version and the versions the server now serves (None: no server reached).
    """
    chosen = get_version(repository, version, name)
    _may_change(client)
    choice = read_default(repository, name)
    current = default_version([v.number for v in list_versions(repository, name)
                               if not v.retired], choice)
    mark_retired(chosen, False)
    if current is not None and current != chosen.number:
        choice.previous.append(current)
    choice.version = chosen.number
    write_default(repository, choice, name)
    shadow = read_shadow(repository, name)
    if shadow is not None and shadow.version == chosen.number:
        write_shadow(repository, None, name)      # the shadow became the default: done
    return chosen, _load_into(client, chosen, repository, name)


def rollback(repository: str | Path, name: str = config.MODEL_NAME,
             client: V2Client | None = None) -> tuple[Version, list[int] | None]:
    """Make the default the version it was before the last `promote` (served again if it was
    retired since)."""
    choice = read_default(repository, name)
    if not choice.previous:
        raise VersionError(f"model '{name}' has no earlier default to roll back to: "
                           "`promote` a version to choose one")
    previous = get_version(repository, choice.previous.pop(), name)
    _may_change(client)
    mark_retired(previous, False)
    choice.version = previous.number
    write_default(repository, choice, name)
    return previous, _load_into(client, previous, repository, name)


def _may_change(client: V2Client | None) -> None:
    """Before the repository changes: a server that would refuse the load (the image's front,
    without the operator's token) stops the command with nothing changed, so the repository's
    files and what serves never disagree."""
    if client is not None and client.live():
        client.may_change()


def _load_into(client: V2Client | None, chosen: Version | None, repository: str | Path,
               name: str) -> list[int] | None:
    if client is None or not client.live():
        return None
    served = sync_server(client, repository, name)
    if chosen is not None and chosen.number not in served:
        raise VersionError(f"server at {client.url} did not load version {chosen.number} of "
                           f"'{name}' (see its log: the artifact may be damaged)")
    return served


def retire(repository: str | Path, version: int | str, name: str = config.MODEL_NAME,
           client: V2Client | None = None) -> tuple[Version, list[int] | None]:
    """Stop serving `version`; its files stay and `promote` brings it back. While other
    versions are active the default cannot be retired (promote one of them, or roll back,
    first); the last active version can, and then nothing is served."""
    chosen = get_version(repository, version, name)
    others = [v for v in list_versions(repository, name)
              if not v.retired and v.number != chosen.number]
    if others and not chosen.retired and read_default(repository, name).version == chosen.number:
        raise VersionError(f"version {chosen.number} of '{name}' is the default: promote another "
                           "version or roll back first")
    shadow = read_shadow(repository, name)
    if shadow is not None and shadow.version == chosen.number:
        raise VersionError(f"version {chosen.number} of '{name}' is the shadow: stop it first "
                           "(santander shadow --off)")
    _may_change(client)
    mark_retired(chosen, True)
    if client is None or not client.live():
        return chosen, None
    return chosen, sync_server(client, repository, name)


def shadow(repository: str | Path, version: int | str | None, rate: float = 1.0,
           name: str = config.MODEL_NAME,
           client: V2Client | None = None) -> tuple[Version | None, list[int] | None]:
    """Have `version` score a share `rate` of the default's requests, logged only (None: stop
    the shadow). Returns the shadow version and what the server now serves."""
    if version is None:
        _may_change(client)
        write_shadow(repository, None, name)
        return None, _load_into(client, None, repository, name)
    chosen = get_version(repository, version, name)
    if chosen.retired:
        raise VersionError(f"version {chosen.number} of '{name}' is retired: promote it, or "
                           "shadow an active version")
    if chosen.number == current_default(repository, name):
        raise VersionError(f"version {chosen.number} of '{name}' is the default: a shadow is "
                           "another version")
    if not 0.0 < rate <= 1.0:
        raise VersionError(f"rate {rate} is not a share of requests (more than 0, at most 1)")
    _may_change(client)
    write_shadow(repository, ShadowChoice(chosen.number, rate), name)
    return chosen, _load_into(client, chosen, repository, name)
