"""A real MLServer on the exported repository answers V2 requests and request.py."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from santander import artifact
from santander.data.io import load_features
from santander.export import read_model_settings

from servers import running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import request as client  # noqa: E402  (the top-level request.py)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained_repository, tmp_path_factory):
    root, outcome = trained_repository
    with running_server(root / "deploy", tmp_path_factory.mktemp("server")) as srv:
        yield srv, outcome


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_batch_probabilities_and_labels_match_the_artifact(server, small_csv):
    srv, outcome = server
    settings = read_model_settings(outcome.version_dir)
    extra = settings["parameters"]["extra"]
    model = artifact.load(outcome.version_dir / settings["parameters"]["uri"],
                          extra["artifact_format"])
    X, _ = load_features(small_csv, rows=7)
    expected = model.predict_proba(X.astype(np.float32))[:, 1]
    response = client.infer_rest(srv.http_url, "xgboost-model", None, X, request_id="r-7")
    outputs = {o["name"]: o for o in response["outputs"]}
    assert response["id"] == "r-7" and response["model_version"] == "1"
    np.testing.assert_allclose(outputs["probability"]["data"], expected, rtol=1e-5)
    assert outputs["label"]["data"] == [int(p >= extra["threshold"]) for p in expected]


def test_wrong_shape_is_a_400_naming_the_shape(server):
    srv, _ = server
    status, body = _post(f"{srv.http_url}/v2/models/xgboost-model/infer", {"inputs": [
        {"name": "features", "shape": [1, 199], "datatype": "FP32", "data": [0.0] * 199}]})
    assert status == 400
    assert "shape [1, 199]" in body["error"] and "[n, 200]" in body["error"]


def test_request_py_prints_one_answer_and_fails_in_one_line(server, capsys):
    srv, _ = server
    assert client.main(["--url", srv.http_url]) == 0
    out = capsys.readouterr().out
    assert "probability" in out and "label" in out and "version 1" in out
    assert client.main(["--url", srv.http_url, "--model", "missing-model"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "404" in err and "missing-model" in err
