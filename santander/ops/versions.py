"""The versions of a served model: what is on disk, what is retired, what the server has loaded.

Which versions are served is kept in the repository itself, so a restart (or the deploy
image) serves the same set: a retired version keeps its files and gets a `RETIRED` marker,
which the repository (`santander.serving.repository`) leaves out. A running server is told through
MLServer's repository API: `POST /v2/repository/models/<name>/load` loads every version the
repository offers (new ones load beside the old, and the old stay up while already-loaded
ones are reloaded) and unloads the ones it no longer offers; `/unload` drops the name.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from santander import config
from santander.errors import VersionError
from santander.layout import RETIRED_MARKER, Version, get_version, list_versions


def version_table(repository: str | Path, name: str = config.MODEL_NAME,
                  client: AdminClient | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Every version's summary (oldest first) with its `state`: "serving" (the server has it
    loaded), "active" (served when a server starts) or "retired"; and whether a server
    answered."""
    versions = list_versions(repository, name)
    served = None
    if versions and client is not None and client.reachable():
        served = set(client.loaded_versions(name, [v.number for v in versions]))
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


class AdminClient:
    """MLServer's model repository API and per-version readiness, over REST."""

    def __init__(self, url: str = f"http://{config.SERVER_HOST}:{config.HTTP_PORT}",
                 timeout: float = 300.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise VersionError(f"cannot reach the server at {self.url}: "
                               f"{getattr(exc, 'reason', exc)}") from None

    def reachable(self) -> bool:
        try:
            return self._call("GET", "/v2/health/live")[0] == 200
        except VersionError:
            return False

    def load(self, name: str) -> None:
        """Serve every version the repository offers for `name`; unload the rest."""
        status, body = self._call("POST", f"/v2/repository/models/{name}/load")
        if status != 200:
            raise VersionError(f"server at {self.url} could not load '{name}': HTTP {status} "
                               f"{_message(body)}")

    def unload(self, name: str) -> None:
        status, body = self._call("POST", f"/v2/repository/models/{name}/unload")
        if status not in (200, 404):
            raise VersionError(f"server at {self.url} could not unload '{name}': HTTP {status} "
                               f"{_message(body)}")

    def is_loaded(self, name: str, version: int | str) -> bool:
        try:
            status, _ = self._call("GET", f"/v2/models/{name}/versions/{version}/ready")
        except VersionError:
            return False
        return status == 200

    def loaded_versions(self, name: str, candidates: list[int]) -> list[int]:
        return [v for v in candidates if self.is_loaded(name, v)]


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)
    return str(body)[:300]


def sync_server(client: AdminClient, repository: str | Path,
                name: str = config.MODEL_NAME) -> list[int]:
    """Make the server serve exactly the repository's active versions; return them."""
    active = [v.number for v in list_versions(repository, name) if not v.retired]
    if active:
        client.load(name)
    else:
        client.unload(name)
    return client.loaded_versions(name, active)


def promote(repository: str | Path, version: int | str, name: str = config.MODEL_NAME,
            client: AdminClient | None = None) -> tuple[Version, list[int] | None]:
    """Serve `version` (again): clear its retirement and load it into a running server.

    Returns the version and the versions the server now serves (None: no server reached).
    """
    chosen = get_version(repository, version, name)
    mark_retired(chosen, False)
    if client is None or not client.reachable():
        return chosen, None
    served = sync_server(client, repository, name)
    if chosen.number not in served:
        raise VersionError(f"server at {client.url} did not load version {chosen.number} of "
                           f"'{name}' (see its log: the artifact may be damaged)")
    return chosen, served


def retire(repository: str | Path, version: int | str, name: str = config.MODEL_NAME,
           client: AdminClient | None = None) -> tuple[Version, list[int] | None]:
    """Stop serving `version`; its files stay and `promote` brings it back."""
    chosen = get_version(repository, version, name)
    mark_retired(chosen, True)
    if client is None or not client.reachable():
        return chosen, None
    return chosen, sync_server(client, repository, name)
