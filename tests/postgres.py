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


@contextlib.contextmanager
def postgres_server():
    """Yields the SQLAlchemy URL of a fresh database on 127.0.0.1; stops and removes it after."""
    folder = Path(tempfile.mkdtemp(prefix="santander-pg-"))
    data, port = folder / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    run = lambda command: subprocess.run(_as_server_user(command), check=True,  # noqa: E731
                                         capture_output=True, text=True, timeout=120)
    try:
        run([_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--no-sync", "-E", "UTF8"])
        run([_binary("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
             "-o", f"-h 127.0.0.1 -p {port} -k {folder} -F", "start"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        log = folder / "server.log"
        raise RuntimeError(f"postgres did not start: {exc.stderr}\n"
                           f"{log.read_text() if log.exists() else ''}") from exc
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([_binary("pg_ctl"), "-D", str(data), "-m", "fast",
                                            "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
