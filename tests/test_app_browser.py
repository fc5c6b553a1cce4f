"""The page in a real headless Chromium (Debian's, driven by Playwright): the server and the app
started as users start them, the prefilled row scored on the page, the same probability as
request.py gives for that row, and a screenshot kept."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from santander.app import data
from santander.app.browser import running_app, score_prefilled_row
from santander.ops.launcher import running_server
from tests.helpers import ROOT

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_chromium_scores_the_prefilled_row_as_request_py_does(trained_repository, tmp_path):
    root, _ = trained_repository
    repository = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repository,
                    ignore=shutil.ignore_patterns("predictions.sqlite*"))
    screenshot = tmp_path / "app.png"
    with running_server(repository, tmp_path / "server") as server:
        with running_app(server.http_url, repository, tmp_path / "app.log") as app_url:
            shown = score_prefilled_row(app_url, screenshot)
        row = data.sample_row(data.Sources(server.http_url, repository))
        row.to_csv(tmp_path / "row.csv", index=False)
        done = subprocess.run([sys.executable, "request.py", "--url", server.http_url,
                               "--data", str(tmp_path / "row.csv")],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answered = float(re.search(r"probability (\d\.\d{4})", done.stdout).group(1))
    assert shown == answered
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000            # a drawn page, not a blank one
    print(f"page and request.py: {shown:.4f}; screenshot {screenshot}")
