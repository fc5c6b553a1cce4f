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
from santander.layout import DEFAULT_FILE, list_versions, models_dir
from santander.v2_client import ClientError, V2Client

from helpers import client, infer_grpc, two_versions

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
    # A repository from before defaults were chosen: its newest active version is the default.
    (models_dir(repo) / DEFAULT_FILE).unlink()
    assert main(["retire", "11", "--repository", str(repo), "--url", "http://127.0.0.1:9"]) == 0
    with running_server(repo, tmp_path / "server") as srv:
        status, body = _infer(srv.http_url, X[:2])
        assert status == 200 and body["model_version"] == "10"     # not "9" (text order)
        status, _ = _infer(srv.http_url, X[:2], version="11")
        assert status == 404
        assert _infer(srv.http_url, X[:2], version="2")[0] == 200


def test_the_default_is_the_promoted_version_switched_under_load_and_kept_by_a_restart(
        tmp_path, capsys):
    repo = tmp_path / "deploy"
    X = two_versions(repo)[:3]
    with running_server(repo, tmp_path / "server") as srv:
        url = srv.http_url
        # The first version exported is the default; the newer one waits to be promoted.
        assert _infer(url, X)[1]["model_version"] == "1"
        _, by_version = _infer(url, X, version="2")
        with Stream(url, X) as stream:
            _wait_for(lambda: len(stream.answers) > 20)
            assert main(["promote", "2", "--repository", str(repo), "--url", url]) == 0
            promoted_at = time.monotonic()
            assert "version 2 is the default" in capsys.readouterr().out
            _wait_for(lambda: sum(t > promoted_at for t, _, _ in stream.answers) > 20)
            assert main(["rollback", "--repository", str(repo), "--url", url]) == 0
            rolled_back_at = time.monotonic()
            assert "rolled back: version 1 is the default" in capsys.readouterr().out
            _wait_for(lambda: sum(t > rolled_back_at for t, _, _ in stream.answers) > 20)
        failed = [(s, v) for _, s, v in stream.answers if s != 200]
        assert failed == [], f"{len(failed)} failed of {len(stream.answers)}"
        assert {v for t, _, v in stream.answers if promoted_at < t < rolled_back_at - 1} \
            <= {"2"}
        assert {v for t, _, v in stream.answers if t > rolled_back_at} == {"1"}
        # The default answers as its own version does, which still answers at its path.
        assert main(["promote", "2", "--repository", str(repo), "--url", url]) == 0
        status, body = _infer(url, X)
        assert status == 200 and body["model_version"] == "2"
        assert _probabilities(body) == _probabilities(by_version)
        assert _infer(url, X, version="1")[0] == 200
        assert V2Client(url).metadata("xgboost-model")["parameters"]["default_version"] == "2"
        over_grpc = infer_grpc(srv.grpc_address, "xgboost-model", X, "no-version")
        assert over_grpc["model_version"] == "2"
        np.testing.assert_allclose(over_grpc["outputs"][0]["data"], _probabilities(body),
                                   rtol=1e-6)
    capsys.readouterr()
    assert main(["versions", "--repository", str(repo), "--url", "http://127.0.0.1:9"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].split()[:3] == ["1", "active", "naive_bayes"]           # not the default
    assert listed[2].split()[:3] == ["2", "active", "yes"]
    with running_server(repo, tmp_path / "server-again") as srv:
        assert _infer(srv.http_url, X)[1]["model_version"] == "2"


def test_what_cannot_be_done_to_the_default_is_one_line_and_exit_2(tmp_path, capsys):
    repo = tmp_path / "deploy"
    two_versions(repo)
    offline = ["--repository", str(repo), "--url", "http://127.0.0.1:9"]
    cases = [(["rollback"], "no earlier default to roll back to"),
             (["promote", "7"], "has no version 7 (versions: 1, 2)")]
    for argv, message in cases:
        assert main([*argv, *offline]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    assert main(["promote", "1", *offline]) == 0
    assert main(["retire", "1", *offline]) == 2
    assert "version 1 of 'xgboost-model' is the default" in capsys.readouterr().err
    assert not list_versions(repo)[0].retired
