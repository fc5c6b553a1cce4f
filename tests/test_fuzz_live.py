"""A live server fuzzed over REST and gRPC: generated and mutated requests (tests/v2_strategies.py
and raw bodies no parser would accept) must each get an answer that is not a server error,
with no dropped connection, and afterwards the server still answers correctly."""

from __future__ import annotations

import http.client
import json
import struct

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc.converters import ModelInferRequestConverter
from mlserver.types import InferenceRequest
from pydantic import ValidationError

from santander.config import MODEL_NAME
from santander.export import export_version
from santander.ops.launcher import running_server
from santander.loader import load_version
from santander.training.candidates import get_family
from v2_strategies import bodies, examples

pytestmark = pytest.mark.server

PATH = f"/v2/models/{MODEL_NAME}/infer"
# gRPC codes that mean the server failed, not the request.
SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
                 grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED}
COUNT = {"rest": 0, "grpc": 0}


@pytest.fixture(scope="module")
def live(wide_data, tmp_path_factory):
    X, y = wide_data
    root = tmp_path_factory.mktemp("fuzz")
    version = export_version(get_family("histogram_nb").build().fit(X, y), "additive", 0.5, {},
                             root / "deploy")
    with running_server(root / "deploy", root / "server") as server:
        yield server, version


class Rest:
    """One keep-alive connection, as a client holds it; reopened only if the server closed it
    after answering (a connection dropped without an answer fails the test)."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def post(self, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
        self.connection.request("POST", PATH, body, {"Content-Type": content_type})
        response = self.connection.getresponse()
        answer = response.read()
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        COUNT["rest"] += 1
        return response.status, answer


RAW_BODIES = [b"", b"{", b"[]", b"null", b"42", b'"x"', b"{}", b'{"inputs": null}',
              b'{"inputs": [{}]}', b'{"inputs": "x"}', b"\xff\xfe\x00", b"{" * 10_000,
              b'{"inputs": [' + b"[" * 5_000 + b"]" * 5_000 + b"]}",
              json.dumps({"inputs": [{"name": "features", "shape": [1, 200], "datatype": "FP32",
                                      "data": [float("nan")] * 200}]}).encode(),
              b'{"id": "' + b"x" * 100_000 + b'", "inputs": []}']


def test_raw_rest_bodies_get_a_client_error(live):
    server, _ = live
    rest = Rest(server.http_url)
    for body in RAW_BODIES:
        status, answer = rest.post(body)
        assert 400 <= status < 500, (body[:60], status, answer[:300])
    status, _ = rest.post(b'{"inputs": []}', content_type="text/plain")
    assert 400 <= status < 500
    huge = json.dumps({"inputs": [{"name": "features", "shape": [1, 200], "datatype": "FP32",
                                   "data": [0.123456789] * 3_000_000}]}).encode()
    assert len(huge) > 32 * 2**20                 # over the default body limit
    status, answer = rest.post(huge)
    assert status == 413 and b"at most" in answer, answer[:300]


@settings(max_examples=examples(700), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=bodies())
def test_generated_rest_requests_never_get_a_server_error(live, body):
    server, _ = live
    rest = Rest(server.http_url)
    status, answer = rest.post(json.dumps(body).encode())
    assert status < 500, (body, answer[:500])
    if status >= 400:
        assert json.loads(answer)["error"] if status != 422 else answer


def as_grpc(body: dict, use_raw: bool) -> pb.ModelInferRequest | None:
    """The body as a client library would send it over gRPC, or None if it cannot be built."""
    try:
        request = InferenceRequest.model_validate(body)
        return ModelInferRequestConverter.from_types(request, model_name=MODEL_NAME,
                                                     use_raw=use_raw)
    except (ValidationError, ValueError, TypeError, OverflowError, KeyError, AttributeError,
            struct.error):
        return None


RAW_MUTATIONS = st.sampled_from([
    ("FP32", [1, 200], [b"abc"]), ("FP32", [1, 200], [bytes(796)]), ("FP32", [1, 200], []),
    ("FP64", [1, 200], [bytes(800)]), ("BYTES", [1, 200], [b"\xff\xff\xff\x7f"]),
    ("INT8", [1, 200], [bytes(200)]), ("FP16", [1, 200], [bytes(400)]),
    ("FP32", [1, 200], [bytes(800), bytes(800)]), ("FP32", [2, 200], [bytes(800)]),
    ("FP32", [1, 200], [np.full(200, np.inf, "<f4").tobytes()]),
    ("FP32", [1, 200], [np.full(200, np.nan, "<f4").tobytes()])])


@settings(max_examples=examples(400), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=bodies(), use_raw=st.booleans(), mutation=st.none() | RAW_MUTATIONS,
       extra_inputs=st.integers(0, 2))
def test_generated_grpc_requests_never_get_a_server_error(live, body, use_raw, mutation,
                                                          extra_inputs):
    server, _ = live
    if mutation is None:
        request = as_grpc(body, use_raw)
        if request is None:
            return
    else:
        datatype, shape, raw = mutation
        tensor = pb.ModelInferRequest.InferInputTensor(name="features", datatype=datatype,
                                                       shape=shape)
        request = pb.ModelInferRequest(model_name=MODEL_NAME,
                                       inputs=[tensor] * (1 + extra_inputs),
                                       raw_input_contents=raw)
    with grpc.insecure_channel(server.grpc_address) as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=pb.ModelInferRequest.SerializeToString,
                                    response_deserializer=pb.ModelInferResponse.FromString)
        try:
            infer(request, timeout=30)
        except grpc.RpcError as refused:
            assert refused.code() not in SERVER_FAULTS, (refused.code(), refused.details())
            assert refused.details()
    COUNT["grpc"] += 1


def test_after_the_fuzzing_the_server_is_alive_and_answers_correctly(live, wide_data):
    server, version = live
    assert COUNT["rest"] + COUNT["grpc"] >= 1_000, COUNT
    model, threshold = load_version(version)
    X = wide_data[0][:3]
    status, answer = Rest(server.http_url).post(json.dumps({"inputs": [{
        "name": "features", "shape": [3, 200], "datatype": "FP32",
        "data": X.ravel().tolist()}]}).encode())
    assert status == 200
    outputs = {o["name"]: o["data"] for o in json.loads(answer)["outputs"]}
    expected = model.predict_proba(X)[:, 1]
    np.testing.assert_allclose(outputs["probability"], expected, rtol=1e-5)
    assert outputs["label"] == [int(p >= threshold) for p in expected]
