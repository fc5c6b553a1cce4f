"""Permissions for atomically written files and folders.

`tempfile.mkdtemp`/`mkstemp` create 0700/0600 entries, and renaming keeps that mode. A model
version written that way cannot be read by a server running as another user (the deploy
image's non-root user), so staged output gets the mode a plain mkdir/open would have given it.
"""

from __future__ import annotations

import os
from pathlib import Path


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
