"""A real PostgreSQL server for the tests, started in a temporary folder (Debian's
`postgresql` package; `.ci/run` installs it). initdb and pg_ctl refuse to run as root, so
as root they run as the `postgres` user."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from santander.ops.launcher import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(
        f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package "
                           "(.ci/run does)")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PostgresServer:
    """A fresh cluster on 127.0.0.1 in a temporary folder, which a test can stop and start
    again (the same port, the same data)."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="santander-pg-"))
        self.data, self.port = self.folder / "data", free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, command: list[str]) -> None:
        try:
            subprocess.run(_as_server_user(command), check=True, capture_output=True,
                           text=True, timeout=120)
        except subprocess.CalledProcessError as exc:
            log = self.folder / "server.log"
            raise RuntimeError(f"{' '.join(command[:2])} failed: {exc.stderr}\n"
                               f"{log.read_text() if log.exists() else ''}") from exc

    def initialise(self) -> None:
        self._run([_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "--no-sync", "-E", "UTF8"])

    def start(self) -> None:
        self._run([_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                   "-w", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder} -F", "start"])

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([_binary("pg_ctl"), "-D", str(self.data), "-m",
                                            "fast", "-w", "stop"]),
                           capture_output=True, timeout=60)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster(started: bool = True):
    """A PostgresServer, initialised (and started unless told otherwise); removed after."""
    server = PostgresServer()
    try:
        server.initialise()
        if started:
            server.start()
        yield server
    finally:
        server.remove()


@contextlib.contextmanager
def postgres_server():
    """Yields the SQLAlchemy URL of a fresh database on 127.0.0.1; stops and removes it after."""
    with postgres_cluster() as server:
        yield server.url
