"""The Makefile's knobs: `make system` installs what the suite needs or says what it could not,
and `make run ROWS=N` uses N rows whatever data files already exist."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from santander import config
from tests.helpers import ROOT

SYSTEM = ROOT / "scripts" / "system-packages.sh"


@pytest.mark.system
def test_the_suites_debian_packages_are_all_there_after_make_system():
    # `make test` runs `make system` first: by now nothing may be missing.
    done = subprocess.run(["bash", str(SYSTEM), "--check"], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout) == (0, ""), done.stdout


def test_without_root_or_sudo_make_system_stops_with_one_line_naming_the_packages(tmp_path):
    # A PATH on which none of the tools, nor sudo, can be found; as root, run as `nobody`
    # (a copy of the script where `nobody` can read it, whatever folder the clone is in).
    script = tmp_path / "system-packages.sh"
    shutil.copy(SYSTEM, script)
    for folder in (script, *script.parents):
        if folder == Path(tempfile.gettempdir()):
            break
        folder.chmod(0o755)
    command = ["/bin/bash", str(script)]
    if os.geteuid() == 0:
        command = [shutil.which("runuser"), "-u", "nobody", "--", *command]
    done = subprocess.run(command, env={"PATH": "/nonexistent"}, capture_output=True, text=True,
                          timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    for package in ("chromium", "wrk", "nghttp2-client", "kubernetes-client", "docker.io"):
        assert package in lines[0]
    assert "root or sudo" in lines[0] and done.stdout == ""


def test_rows_names_the_data_file_so_a_smaller_first_run_is_never_reused():
    # Whatever files data/ holds already, a new (rows, seed) is a file of its own to make.
    for rows, seed in ((123, 42), (200_000, 7)):
        done = subprocess.run(["make", "-n", "-C", str(ROOT), "data", f"ROWS={rows}",
                               f"SEED={seed}"], capture_output=True, text=True, timeout=60)
        expected = config.built_in_data_path(rows, seed)
        assert f"make-data --rows {rows} --seed {seed} --out {expected}" in done.stdout, done.stdout
