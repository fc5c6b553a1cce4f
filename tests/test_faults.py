"""Faults, each survived: a process killed with SIGKILL in the middle of an export or a retrain,
a write that fails (a full disk, simulated by a file-size limit), and a server killed with
SIGKILL and started again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from santander.config import MODEL_NAME
from santander.export import export_version
from santander.layout import RETIRED_MARKER, existing_versions, models_dir
from santander.ops.launcher import running_server
from santander.v2_client import V2Client
from santander.loader import load_version
from santander.training.candidates import get_family

from helpers import client

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

# Exports the same table again and again until killed. The table is fitted once, by the test;
# each killed process only reads it (no training imports: a fast start).
_EXPORT_LOOP = """
import sys
from types import SimpleNamespace
from santander.additive import AdditiveTable
from santander.export import export_version
model = SimpleNamespace(table_=AdditiveTable.load(sys.argv[2]))
print("loaded", flush=True)
while True:
    export_version(model, "additive", 0.5, {}, sys.argv[1])
"""


def assert_every_visible_version_is_whole(repository: Path,
                                          checked: set[int] | None = None) -> list[int]:
    """Each version folder MLServer could see loads: settings, artifact and checksum agree.
    `checked`: versions already loaded (a whole version stays whole), updated."""
    numbers = existing_versions(repository)
    for number in set(numbers) - (checked or set()):
        load_version(models_dir(repository) / str(number))
    if checked is not None:
        checked.update(numbers)
    return numbers


def test_sigkill_during_exports_leaves_only_whole_versions_and_numbering_goes_on(tmp_path,
                                                                                 wide_data):
    repository = tmp_path / "deploy"
    X, y = wide_data
    table = tmp_path / "table.npz"
    get_family("histogram_nb").build().fit(X, y).table_.save(table)
    rng, checked = random.Random(0), set()
    staged = lambda: list(models_dir(repository).glob(".staging-*"))  # noqa: E731
    # At least 12 kills at random moments; more (up to 40) until one has landed mid-export.
    for attempt in range(40):
        if attempt >= 12 and staged():
            break
        process = subprocess.Popen([sys.executable, "-c", _EXPORT_LOOP, str(repository),
                                    str(table)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "loaded"
        time.sleep(rng.uniform(0.0, 0.15))       # somewhere inside an export
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        assert_every_visible_version_is_whole(repository, checked)
    before = assert_every_visible_version_is_whole(repository)
    assert before == list(range(1, len(before) + 1))
    # Evidence that kills landed mid-export: their hidden staging folders (MLServer skips them).
    assert staged(), "no kill landed inside an export"
    after = export_version(get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y),
                           "joblib", 0.5, {}, repository)
    assert after.name == str(len(before) + 1)


def test_sigkill_during_a_retrain_leaves_no_half_version(trained_repository, small_csv,
                                                          tmp_path):
    import shutil
    root, _ = trained_repository
    repository = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repository)
    command = [sys.executable, "-m", "santander", "retrain", "--data", str(small_csv), "--quick",
               "--repository", str(repository), "--no-progress", "--jobs", "1"]
    staging = lambda: list(models_dir(repository).glob(".staging-*"))  # noqa: E731
    # One kill during the selection, then kills the moment an export has begun (its staging
    # folder appears), until one lands before the version is published.
    for attempt in range(4):
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + (1.0 if attempt == 0 else 120.0)
        while time.monotonic() < deadline and process.poll() is None and (
                attempt == 0 or not staging()):
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait()
        numbers = assert_every_visible_version_is_whole(repository)
        if attempt and staging() and numbers == [1]:
            break                               # a kill landed inside the export
        for number in numbers[1:]:              # published before the kill: start again
            shutil.rmtree(models_dir(repository) / str(number))
    assert staging() and numbers == [1], "no kill landed inside an export"
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    numbers = assert_every_visible_version_is_whole(repository)
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2


_FULL_DISK = """
import resource, signal, sys
from santander.cli import main
# A file-size limit makes every write past it fail with EFBIG, as a full disk fails with
# ENOSPC: SIGXFSZ is ignored so the write raises instead of killing the process.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.exit(main(sys.argv[2:]))
"""


# 2 kB: the model artifact cannot be written; 20 kB: the artifact can, the version's reference
# sample (~2 MB) cannot.
@pytest.mark.parametrize("max_file_bytes", [2_000, 20_000])
def test_a_failed_write_during_export_is_one_line_and_nothing_becomes_visible(
        max_file_bytes, small_parquet, tmp_path):
    repository = tmp_path / "deploy"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(max_file_bytes), "train", "--data", str(small_parquet),
         "--quick", "--repository", str(repository), "--no-progress", "--jobs", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "SANTANDER_TRACKING": "off"})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()
    assert len(last) == 1 and "File too large" in last[0] and "Traceback" not in done.stderr, \
        done.stderr[-2000:]
    assert "export" in last[0]
    assert existing_versions(repository) == []
    leftovers = [p for p in models_dir(repository).iterdir()] if models_dir(repository).exists() \
        else []
    assert leftovers == []


def test_a_report_that_cannot_be_written_withdraws_its_version(small_parquet, tmp_path):
    """The version is published before its report; a failed report takes it back."""
    repository = tmp_path / "deploy"
    blocked = tmp_path / "reports"
    blocked.write_text("a file where the reports folder should be")
    done = subprocess.run(
        [sys.executable, "-m", "santander", "train", "--data", str(small_parquet), "--quick",
         "--repository", str(repository), "--reports", str(blocked), "--no-progress",
         "--jobs", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "SANTANDER_TRACKING": "off"})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()
    assert len(last) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "report of version 1 could not be written" in last[0] and "withdrawn" in last[0]
    assert existing_versions(repository) == []
    leftovers = [p for p in models_dir(repository).iterdir()] if models_dir(repository).exists() \
        else []
    assert leftovers == []


@pytest.mark.server
def test_a_server_killed_with_sigkill_serves_the_same_versions_after_a_restart(
        trained_repository, tmp_path):
    import shutil
    root, outcome = trained_repository
    repository = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repository)
    versions = models_dir(repository)
    for number in (2, 3):
        shutil.copytree(versions / "1", versions / str(number))
        settings = versions / str(number) / "model-settings.json"
        settings.write_text(settings.read_text().replace('"version": "1"',
                                                         f'"version": "{number}"'))
    (versions / "2" / RETIRED_MARKER).write_text("retired\n")
    X = np.zeros((1, 200))
    served = []
    for _ in range(2):
        with running_server(repository, tmp_path / "server") as server:
            served.append(V2Client(server.http_url).loaded_versions(MODEL_NAME))
            answer = V2Client(server.http_url).infer(MODEL_NAME, None, X)
            assert answer["model_version"] == "1"          # the default: the first exported
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
    assert served[0] == served[1] == ["1", "3"]
