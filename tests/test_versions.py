"""Versions on a real MLServer: a new version swapped in and an old one retired with no
failed request, old versions answering exactly as before, numeric version order."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from santander.cli import main
from santander.training.data.io import load_features, write_frame
from santander.training.data.synthetic import generate
from santander.export import export_version
from santander.training.candidates import get_family
from santander.training.retrain import retrain
from santander.training.train import RunOptions
from santander.ops.launcher import running_server
from santander.layout import list_versions
from santander.v2_client import ClientError, V2Client

from helpers import client

pytestmark = pytest.mark.server


def _infer(url: str, X: np.ndarray, version: str | None = None) -> tuple[int, dict]:
    path = "/v2/models/xgboost-model" + (f"/versions/{version}" if version else "") + "/infer"
    body = {"inputs": [{"name": "features", "shape": list(X.shape), "datatype": "FP32",
                        "data": X.ravel().tolist()}]}
    try:
        status, answer = V2Client(url).call("POST", path, body)
    except ClientError as exc:                  # a dropped connection counts as a failure
        return 0, {"error": str(exc)}
    return status, answer if isinstance(answer, dict) else {"error": str(answer)}


def _probabilities(body: dict) -> list[float]:
    return next(o["data"] for o in body["outputs"] if o["name"] == "probability")


class Stream:
    """Callers sending requests back to back to /infer, recording every answer."""

    def __init__(self, url: str, X: np.ndarray, callers: int = 4):
        self.url, self.X = url, X
        self.answers: list[tuple[float, int, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(callers)]

    def _run(self):
        while not self._stop.is_set():
            status, body = _infer(self.url, self.X)
            self.answers.append((time.monotonic(), status, body.get("model_version")))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_new_version_swapped_in_and_old_retired_with_zero_failed_requests(
        trained_repository, small_csv, tmp_path, capsys):
    root, _ = trained_repository
    repo = Path(shutil.copytree(root / "deploy", tmp_path / "deploy"))
    new_data = write_frame(generate(2_500, seed=99), tmp_path / "new.parquet")
    X, _ = load_features(small_csv, rows=5)
    with running_server(repo, tmp_path / "server") as srv:
        url = srv.http_url
        status, first = _infer(url, X, version="1")
        assert status == 200
        with Stream(url, X) as stream:
            _wait_for(lambda: len(stream.answers) > 20)
            outcome = retrain(new_data, options=RunOptions(
                quick=True, repository=repo, reports_dir=tmp_path / "reports", progress=False))
            assert main(["promote", outcome.version, "--repository", str(repo),
                         "--url", url]) == 0
            promoted_at = time.monotonic()
            assert "now serves versions 1, 2" in capsys.readouterr().out
            # The old version answers exactly as before the retraining.
            status, again = _infer(url, X, version="1")
            assert status == 200 and _probabilities(again) == _probabilities(first)
            assert client.main(["--url", url, "--compare", "--data", str(small_csv),
                                "--rows", "2"]) == 0
            compared = capsys.readouterr().out
            assert "versions 1, 2" in compared and "v1 probability" in compared
            _wait_for(lambda: stream.answers[-1][2] == "2")
            assert main(["retire", "1", "--repository", str(repo), "--url", url]) == 0
            retired_at = time.monotonic()
            assert "now serves versions 2" in capsys.readouterr().out
            _wait_for(lambda: sum(t > retired_at for t, _, _ in stream.answers) > 20)

        failed = [(s, v) for _, s, v in stream.answers if s != 200]
        assert failed == [], f"{len(failed)} failed of {len(stream.answers)}"
        assert all(v in ("1", "2") for _, _, v in stream.answers)
        assert {v for t, _, v in stream.answers if t > retired_at} == {"2"}
        assert any(v == "1" for t, _, v in stream.answers if t < promoted_at)
        status, body = _infer(url, X, version="1")
        assert status == 404 and "1" in body.get("error", "")
    version_1 = list_versions(repo)[0]
    assert version_1.retired and (version_1.folder / "model-settings.json").exists()


def test_newest_is_numeric_and_retired_versions_stay_down_after_a_restart(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 200)).astype(np.float32)
    y = (X[:, 0] > 1).astype(int)
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y)
    repo = tmp_path / "deploy"
    for _ in range(11):
        export_version(model, "joblib", 0.5, {"family": "naive_bayes"}, repo)
    assert main(["retire", "11", "--repository", str(repo), "--url", "http://127.0.0.1:9"]) == 0
    with running_server(repo, tmp_path / "server") as srv:
        status, body = _infer(srv.http_url, X[:2])
        assert status == 200 and body["model_version"] == "10"     # not "9" (text order)
        status, _ = _infer(srv.http_url, X[:2], version="11")
        assert status == 404
        assert _infer(srv.http_url, X[:2], version="2")[0] == 200
