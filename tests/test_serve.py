"""A real MLServer on the exported repository answers V2 requests and request.py."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from santander.config import MODEL_NAME
from santander.training.data.io import load_features
from santander.layout import read_model_settings
from santander.ops.launcher import running_server
from santander.v2_client import V2Client

from helpers import ROOT, client, exported_model, infer_grpc

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(trained_repository, tmp_path_factory):
    root, outcome = trained_repository
    with running_server(root / "deploy", tmp_path_factory.mktemp("server")) as srv:
        yield srv, outcome


def _post(url: str, body: dict) -> tuple[int, dict]:
    base, path = url.split("/v2/", 1)
    return V2Client(base).call("POST", "/v2/" + path, body)


def test_batch_probabilities_and_labels_match_the_artifact(server, small_csv):
    srv, outcome = server
    settings = read_model_settings(outcome.version_dir)
    extra = settings["parameters"]["extra"]
    model = exported_model(outcome.version_dir)
    X, _ = load_features(small_csv, rows=7)
    expected = model.predict_proba(X.astype(np.float32))[:, 1]
    response = V2Client(srv.http_url).infer(MODEL_NAME, None, X, request_id="r-7")
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
    assert client.main(["--url", srv.http_url, "--model", "missing-model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "404" in err and "missing-model" in err


def _infer_url(srv) -> str:
    return f"{srv.http_url}/v2/models/xgboost-model/infer"


def _columns_body(X: np.ndarray, order: list[int]) -> dict:
    return {"parameters": {"content_type": "pd"}, "inputs": [
        {"name": f"var_{j}", "shape": [len(X)], "datatype": "FP64", "data": X[:, j].tolist()}
        for j in order]}


def test_named_columns_in_any_order_give_the_same_probabilities(server, small_csv):
    srv, _ = server
    X, _ = load_features(small_csv, rows=4)
    ordered = V2Client(srv.http_url).infer(MODEL_NAME, None, X)
    shuffled_order = list(np.random.default_rng(0).permutation(200))
    status, shuffled = _post(_infer_url(srv), _columns_body(X, shuffled_order))
    assert status == 200
    probability = {o["name"]: o["data"] for o in shuffled["outputs"]}["probability"]
    expected = {o["name"]: o["data"] for o in ordered["outputs"]}["probability"]
    np.testing.assert_allclose(probability, expected, rtol=1e-6)


def _tensor(shape, data, datatype="FP32", name="features"):
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


ROW = [0.5] * 200


def test_bad_requests_are_400_with_the_codec_message_and_no_traceback(server):
    """Over HTTP: each refusal of the codec (tests/test_codec.py has them all) is a 400."""
    srv, _ = server
    for body, message in [
            (_tensor([1, 200], [None] + ROW[1:]), "missing (null)"),
            (_tensor([1, 200], ROW, datatype="BYTES"), "datatype BYTES"),
            ({**_tensor([1, 200], ROW), "outputs": [{"name": "score"}]},
             "unknown output(s) score"),
            # Finite in JSON, infinite as FP32: refused, not a 500 from the model.
            (_tensor([1, 200], [1e39] + ROW[1:]), "outside the FP32 range"),
            # MLServer echoes the id in a response header: a NUL there dropped the connection.
            ({**_tensor([1, 200], ROW), "id": "a\u0000b"}, "U+0000")]:
        status, answer = _post(_infer_url(srv), body)
        assert status == 400, answer
        assert message in answer["error"] and "Traceback" not in answer["error"]


def test_bad_column_requests_are_400_with_a_message(server):
    srv, _ = server
    X = np.zeros((2, 200))
    body = _columns_body(X, list(range(199)))
    status, answer = _post(_infer_url(srv), body)
    assert status == 400 and "missing 1 feature column(s): var_199" in answer["error"]
    body = _columns_body(X, list(range(200)) + [3])
    status, answer = _post(_infer_url(srv), body)
    assert status == 400 and "duplicate input name(s): var_3" in answer["error"]
    body = _columns_body(X, list(range(200)))
    body["inputs"].append({"name": "var_x", "shape": [2], "datatype": "FP64", "data": [0, 0]})
    status, answer = _post(_infer_url(srv), body)
    assert status == 400 and "unknown input name(s): var_x" in answer["error"]


def test_stock_outputs_keep_their_stock_meaning(server, small_csv):
    srv, _ = server
    X, _ = load_features(small_csv, rows=3)
    body = {**_tensor([3, 200], X.ravel().tolist(), "FP64"),
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    status, answer = _post(_infer_url(srv), body)
    assert status == 200
    outputs = {o["name"]: o for o in answer["outputs"]}
    proba = np.array(outputs["predict_proba"]["data"]).reshape(3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert outputs["predict"]["data"] == [int(p >= 0.5) for p in proba[:, 1]]


def test_metadata_shows_schema_and_model_card(server):
    srv, outcome = server
    metadata = V2Client(srv.http_url).metadata(MODEL_NAME)
    assert metadata["inputs"][0]["shape"] == [-1, 200]
    card = metadata["parameters"]["model_card"]
    assert card["family"] == outcome.report["model_card"]["family"]
    assert card["data"]["fingerprint"] == outcome.report["model_card"]["data"]["fingerprint"]
    assert metadata["parameters"]["threshold"] == card["threshold"]


def test_explanations_over_rest_and_grpc_sum_to_the_served_log_odds(server, small_csv,
                                                                      capsys):
    srv, _ = server
    X, _ = load_features(small_csv, rows=4)
    answer = V2Client(srv.http_url).infer(MODEL_NAME, None, X, outputs=client.EXPLAIN_OUTPUTS)
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["contributions"]["shape"] == [4, 201]
    contributions = np.reshape(outputs["contributions"]["data"], (4, 201))
    probability = np.asarray(outputs["probability"]["data"], dtype=np.float64)
    np.testing.assert_allclose(contributions.sum(axis=1),
                               np.log(probability) - np.log1p(-probability), atol=1e-4)
    # request.py --explain: under each row, its top 5 features by size, largest first.
    assert client.main(["--url", srv.http_url, "--data", str(small_csv), "--rows", "4",
                        "--explain"]) == 0
    rest_lines = capsys.readouterr().out.splitlines()
    tops = [line.split() for line in rest_lines if line.startswith("    ")]
    assert len(tops) == 4
    for row, top in zip(contributions[:, :-1], tops):
        names, values = top[0::2], [float(v) for v in top[1::2]]
        assert names == [f"var_{j}" for j in np.argsort(-np.abs(row), kind="stable")[:5]]
        assert values == sorted(values, key=abs, reverse=True)
    # The same over gRPC, from a process of its own (helpers.infer_grpc says why).
    done = subprocess.run([sys.executable, "request.py", "--grpc", srv.grpc_address, "--data",
                           str(small_csv), "--rows", "4", "--explain"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == rest_lines[1:]


def test_the_notebooks_last_cell_asks_the_served_model(server, small_csv):
    from santander.frames import load_features
    from santander.v2_client import ask_served_model
    srv, _ = server
    X, ids = load_features(small_csv, rows=3)
    said = ask_served_model(srv.http_url, MODEL_NAME, X, list(ids))
    answered = _post(f"{srv.http_url}/v2/models/{MODEL_NAME}/infer",
                     {"inputs": [{"name": "features", "shape": list(X.shape), "datatype": "FP64",
                                  "data": X.ravel().tolist()}]})[1]
    probabilities = next(o["data"] for o in answered["outputs"] if o["name"] == "probability")
    assert said.splitlines()[0].startswith(f"{srv.http_url} serves version(s) 1 of {MODEL_NAME}")
    assert [line.split()[0].rstrip(":") for line in said.splitlines()[1:]] == list(ids)
    assert [f"{p:.4f}" for p in probabilities] == [line.split()[2]
                                                   for line in said.splitlines()[1:]]


def test_grpc_answers_like_rest(server, small_csv):
    srv, _ = server
    X, _ = load_features(small_csv, rows=3)
    rest = V2Client(srv.http_url).infer(MODEL_NAME, None, X)
    grpc = infer_grpc(srv.grpc_address, MODEL_NAME, X, request_id="g-1")
    assert grpc["id"] == "g-1"
    rest_p = {o["name"]: o["data"] for o in rest["outputs"]}["probability"]
    grpc_p = {o["name"]: o["data"] for o in grpc["outputs"]}["probability"]
    np.testing.assert_allclose(grpc_p, rest_p, rtol=1e-6)


def test_a_corrupted_version_is_skipped_and_the_others_keep_serving(trained_repository,
                                                                   tmp_path):
    import shutil
    root, outcome = trained_repository
    repo = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repo)
    broken = repo / "models" / MODEL_NAME / "2"
    shutil.copytree(repo / "models" / MODEL_NAME / "1", broken)
    settings = json.loads((broken / "model-settings.json").read_text())
    settings["parameters"]["version"] = "2"
    (broken / "model-settings.json").write_text(json.dumps(settings))
    artifact_file = broken / settings["parameters"]["uri"]
    artifact_file.write_bytes(artifact_file.read_bytes()[:-1] + b"!")
    with running_server(repo, tmp_path / "server") as srv:
        answer = V2Client(srv.http_url).infer(MODEL_NAME, None, np.zeros((1, 200)))
        assert answer["model_version"] == "1"
        status, _ = _post(f"{srv.http_url}/v2/models/xgboost-model/versions/2/infer",
                          _tensor([1, 200], ROW))
        assert status == 404
        log = srv.log_text()
    assert "Not loading version 2 of model 'xgboost-model'" in log and "corrupted" in log


def test_concurrent_callers_each_get_their_own_rows_with_batching(trained_repository, tmp_path,
                                                                 small_csv):
    """A wide batch window so requests really are merged; a bad caller fails alone.

    The runtime counts rows per model call on the metrics port: every good row is scored, in
    fewer calls than there were requests.
    """
    import shutil
    from concurrent.futures import ThreadPoolExecutor
    root, outcome = trained_repository
    repo = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repo)
    settings_path = repo / "models" / MODEL_NAME / "1" / "model-settings.json"
    settings = json.loads(settings_path.read_text())
    settings.update(max_batch_size=64, max_batch_time=0.2)
    settings_path.write_text(json.dumps(settings))
    model = exported_model(settings_path.parent)
    X, _ = load_features(small_csv, rows=120)
    slices = [(i * 7, i * 7 + 1 + i % 5) for i in range(16)]

    def call(k: int):
        if k == 5:
            return _post(f"{srv.http_url}/v2/models/xgboost-model/infer",
                         _tensor([1, 200], [None] + ROW[1:]))
        lo, hi = slices[k]
        return 200, V2Client(srv.http_url).infer(MODEL_NAME, None, X[lo:hi],
                                      request_id=f"caller-{k}")

    with running_server(repo, tmp_path / "server") as srv:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(call, range(16)))
        batches = _batch_rows_metric(srv.metrics_url)
    good = [k for k in range(16) if k != 5]
    assert batches["sum"] == sum(slices[k][1] - slices[k][0] for k in good)
    assert 1 <= batches["count"] < len(good)
    for k, (status, answer) in enumerate(answers):
        if k == 5:
            assert status == 400 and "null" in answer["error"]
            continue
        lo, hi = slices[k]
        assert answer["id"] == f"caller-{k}"
        probability = {o["name"]: o["data"] for o in answer["outputs"]}["probability"]
        np.testing.assert_allclose(probability, model.predict_proba(X[lo:hi].astype(np.float32))[:, 1],
                                   rtol=1e-5)


def _batch_rows_metric(metrics_url: str) -> dict[str, float]:
    """santander_batch_rows' count (model calls) and sum (rows) from the Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as response:
        families = text_string_to_metric_families(response.read().decode())
    samples = next(f.samples for f in families if f.name == "santander_batch_rows")
    return {s.name.rsplit("_", 1)[1]: s.value for s in samples
            if s.name in ("santander_batch_rows_count", "santander_batch_rows_sum")}


def test_serve_and_ask_starts_the_server_and_prints_an_answer(trained_repository, tmp_path,
                                                             capfd):
    from santander.cli import main
    root, _ = trained_repository
    assert main(["serve-and-ask", "--repository", str(root / "deploy"),
                 "--workdir", str(tmp_path)]) == 0
    out = capfd.readouterr().out
    assert "MLServer ready at http://127.0.0.1:" in out
    assert "probability" in out and "label" in out


# A third-party client in its own process, as a user runs it: tritonclient's gRPC protos share
# their names with MLServer's, so the two cannot be imported into one interpreter.
_TRITON_CLIENT = """
import json, sys
import numpy as np
protocol, address, model_name = sys.argv[1:4]
X = np.asarray(json.loads(sys.stdin.read()), dtype=np.float32)
if protocol == "http":
    import tritonclient.http as triton
else:
    import tritonclient.grpc as triton
client = triton.InferenceServerClient(address)
# Over HTTP, MLServer speaks JSON only: the client's standard binary_data=False option.
json_only = {"binary_data": False} if protocol == "http" else {}
tensor = triton.InferInput("features", list(X.shape), "FP32")
tensor.set_data_from_numpy(X, **json_only)
result = client.infer(model_name, [tensor],
                      outputs=[triton.InferRequestedOutput("probability", **json_only)])
print(json.dumps(result.as_numpy("probability").ravel().tolist()))
"""


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_an_unmodified_third_party_v2_client_gets_correct_probabilities(protocol, server,
                                                                        small_csv):
    import subprocess
    import sys
    srv, outcome = server
    model = exported_model(outcome.version_dir)
    X, _ = load_features(small_csv, rows=5)
    X32 = X.astype(np.float32)
    address = srv.http_url.removeprefix("http://") if protocol == "http" else srv.grpc_address
    done = subprocess.run([sys.executable, "-c", _TRITON_CLIENT, protocol, address, MODEL_NAME],
                          input=json.dumps(X32.tolist()), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(json.loads(done.stdout), model.predict_proba(X32)[:, 1],
                               rtol=1e-5)


def test_requests_past_the_limits_are_refused_over_rest_and_grpc(trained_repository, tmp_path):
    """Limits made small: rows and REST body size from the version's settings, the gRPC
    message size from the server's (`grpc_max_message_length`)."""
    import shutil
    import grpc
    root, _ = trained_repository
    repo = tmp_path / "deploy"
    shutil.copytree(root / "deploy", repo)
    settings_path = repo / "models" / MODEL_NAME / "1" / "model-settings.json"
    settings = json.loads(settings_path.read_text())
    settings["parameters"]["extra"]["limits"] = {"max_rows": 50, "max_body_bytes": 100_000}
    settings_path.write_text(json.dumps(settings))
    server_settings = json.loads((repo / "settings.json").read_text())
    server_settings["grpc_max_message_length"] = 30_000
    (repo / "settings.json").write_text(json.dumps(server_settings))
    with running_server(repo, tmp_path / "server") as srv:
        status, answer = _post(_infer_url(srv), _tensor([51, 200], [0.5] * 51 * 200))
        assert status == 400 and "request has 51 rows; at most 50" in answer["error"]
        status, answer = _post(_infer_url(srv), _tensor([50, 200], [0.123456789] * 50 * 200))
        assert status == 413 and "at most 100,000 are accepted" in answer["error"]
        assert _post(_infer_url(srv), _tensor([2, 200], ROW * 2))[0] == 200
        with pytest.raises(grpc.RpcError) as refused:
            infer_grpc_raw(srv.grpc_address, np.full((40, 200), 0.5))   # 32 kB of FP32
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert infer_grpc_raw(srv.grpc_address, np.full((2, 200), 0.5)) > 0


def infer_grpc_raw(address: str, rows: np.ndarray) -> int:
    """One ModelInfer call with MLServer's own stubs (raw FP32 tensor); the reply's size."""
    import grpc
    from mlserver.grpc import dataplane_pb2 as pb
    request = pb.ModelInferRequest(
        model_name=MODEL_NAME, raw_input_contents=[rows.astype("<f4").tobytes()],
        inputs=[pb.ModelInferRequest.InferInputTensor(name="features", datatype="FP32",
                                                      shape=list(rows.shape))])
    with grpc.insecure_channel(address) as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=pb.ModelInferRequest.SerializeToString,
                                    response_deserializer=pb.ModelInferResponse.FromString)
        return infer(request, timeout=30).ByteSize()
