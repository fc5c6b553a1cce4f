"""Writing atomically: into a temporary entry beside the target, then one rename.

A reader sees the old file or folder or the new one, never half of one, and a failure leaves
the target as it was. `tempfile` creates 0700/0600 entries and a rename keeps that mode, so a
model version written that way could not be read by a server running as another user (the
deploy image's non-root user): staged entries get the mode a plain mkdir/open would have given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def as_if_created(path: str | Path) -> None:
    """Give `path` (and, for a folder, everything in it) the mode the umask gives new entries."""
    path = Path(path)
    mask = _umask()
    entries = [path, *path.rglob("*")] if path.is_dir() else [path]
    for entry in entries:
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~mask)


@contextmanager
def staged_folder(parent: str | Path, prefix: str) -> Iterator[Path]:
    """A hidden temporary folder in `parent`, removed on the way out unless `publish` moved it."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def publish(staged: Path, target: Path) -> None:
    """Rename a staged entry to `target`, with ordinary permissions. A folder is not put over
    an existing one (OSError): the caller decides whether to remove it or pick another name."""
    as_if_created(staged)
    if staged.is_dir():
        os.rename(staged, target)
    else:
        os.replace(staged, target)


@contextmanager
def staged_file(out: str | Path) -> Iterator[Path]:
    """A temporary path beside `out` to write to; on a clean exit it replaces `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    staging = Path(name)
    try:
        yield staging
        publish(staging, out)
    finally:
        staging.unlink(missing_ok=True)
