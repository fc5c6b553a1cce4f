"""The versions of a served model: what is on disk, what is retired, what the server has loaded.

Which versions are served is kept in the repository itself, so a restart (or the deploy
image) serves the same set: a retired version keeps its files and gets a `RETIRED` marker,
which the repository (`santander.serving.repository`) leaves out. A running server is told through
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
from santander.layout import RETIRED_MARKER, Version, get_version, list_versions
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
    rows = []
    for version in versions:
        state = "retired" if version.retired else "active"
        if served is not None and version.number in served:
            state = "serving"
        rows.append({**version.summary(), "state": state})
    return rows, served is not None


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
    """Serve `version` (again): clear its retirement and load it into a running server.

    Returns the version and the versions the server now serves (None: no server reached).
    """
    chosen = get_version(repository, version, name)
    mark_retired(chosen, False)
    if client is None or not client.live():
        return chosen, None
    served = sync_server(client, repository, name)
    if chosen.number not in served:
        raise VersionError(f"server at {client.url} did not load version {chosen.number} of "
                           f"'{name}' (see its log: the artifact may be damaged)")
    return chosen, served


def retire(repository: str | Path, version: int | str, name: str = config.MODEL_NAME,
           client: V2Client | None = None) -> tuple[Version, list[int] | None]:
    """Stop serving `version`; its files stay and `promote` brings it back."""
    chosen = get_version(repository, version, name)
    mark_retired(chosen, True)
    if client is None or not client.live():
        return chosen, None
    return chosen, sync_server(client, repository, name)
