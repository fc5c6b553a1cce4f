"""The V2 codec, in-process: what a request may carry, what it is refused for, what comes back.
A live server maps RequestError to HTTP 400 (tests/test_serve.py checks that mapping)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from mlserver.types import InferenceRequest

from santander.serving.codec import (DEFAULT_OUTPUTS, RequestError, check_request_id,
                                     decode_features, decode_id_codes, encode_outputs,
                                     requested_outputs)


def request(body: dict) -> InferenceRequest:
    return InferenceRequest.model_validate(body)


def tensor(shape, data, datatype="FP32", name="features", **extra) -> InferenceRequest:
    return request({"inputs": [{"name": name, "shape": shape, "datatype": datatype,
                                "data": data}], **extra})


def columns(X: np.ndarray, order, shape=lambda n: [n], datatype="FP64") -> InferenceRequest:
    return request({"inputs": [{"name": f"var_{j}", "shape": shape(len(X)),
                                "datatype": datatype, "data": X[:, j].tolist()} for j in order]})


ROWS = np.random.default_rng(0).normal(size=(3, 200)).round(4)
ROW = [0.5] * 200


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_a_tensor_decodes_to_float32_rows(datatype):
    X = decode_features(tensor([3, 200], ROWS.ravel().tolist(), datatype))
    assert X.dtype == np.float32 and X.shape == (3, 200)
    np.testing.assert_array_equal(X, ROWS.astype(np.float32))


def test_nested_data_decodes_like_flat_data():
    flat = decode_features(tensor([3, 200], ROWS.ravel().tolist()))
    nested = decode_features(tensor([3, 200], ROWS.tolist()))
    np.testing.assert_array_equal(flat, nested)


@pytest.mark.parametrize("shape", [lambda n: [n], lambda n: [n, 1]])
def test_named_columns_in_any_order_decode_to_the_same_rows(shape):
    order = list(np.random.default_rng(1).permutation(200))
    X = decode_features(columns(ROWS, order, shape))
    np.testing.assert_array_equal(X, ROWS.astype(np.float32))


BAD_REQUESTS = {
    "199 features": (tensor([1, 199], [0.5] * 199), "shape [1, 199]"),
    "1-D input": (tensor([200], ROW), "shape [200]"),
    "no rows": (tensor([0, 200], []), "shape [0, 200]"),
    "a string": (tensor([1, 200], ["a"] + ROW[1:]), "non-numeric"),
    "BYTES data": (tensor([1, 200], ROW, datatype="BYTES"), "datatype BYTES"),
    "null in data": (tensor([1, 200], [None] + ROW[1:]), "missing (null)"),
    "too few values": (tensor([2, 200], ROW), "needs 400 values, data has 200"),
    "ragged rows": (tensor([2, 200], [ROW, ROW[:-1]]), "not a regular array"),
    "INT64 data": (tensor([1, 200], [1] * 200, datatype="INT64"), "datatype INT64"),
    "infinity": (tensor([1, 200], [float("inf")] + ROW[1:], "FP64"), "non-finite"),
    "NaN": (tensor([1, 200], ROW[:7] + [float("nan")] + ROW[8:], "FP64"), "non-finite"),
    "beyond FP32": (tensor([1, 200], ROW[:3] + [1e39] + ROW[4:], "FP32"),
                    "row 0, feature var_3: 1e+39 is outside the FP32 range"),
    "beyond FP32 as FP64": (tensor([1, 200], ROW[:3] + [-1e308] + ROW[4:], "FP64"),
                            "outside the FP32 range"),
    "no inputs": (request({"inputs": []}), "request has no inputs"),
    "a missing column": (columns(np.zeros((2, 200)), range(199)),
                         "missing 1 feature column(s): var_199"),
    "a duplicated column": (columns(np.zeros((2, 200)), [*range(200), 3]),
                            "duplicate input name(s): var_3"),
    "an unknown column": (request({"inputs": [
        *columns(np.zeros((2, 200)), range(200)).model_dump()["inputs"],
        {"name": "var_x", "shape": [2], "datatype": "FP64", "data": [0, 0]}]}),
        "unknown input name(s): var_x"),
    "columns of different lengths": (request({"inputs": [
        {"name": f"var_{j}", "shape": [1 + (j == 9)], "datatype": "FP64",
         "data": [0.0] * (1 + (j == 9))} for j in range(200)]}),
        "different numbers of rows: [1, 2]"),
    "a column of two per row": (columns(np.zeros((2, 200)), range(200), lambda n: [n, 2]),
                                "has shape [2, 2]; expected [n] or [n, 1]"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_are_refused_with_a_message_naming_the_problem(case):
    payload, message = BAD_REQUESTS[case]
    with pytest.raises(RequestError) as refused:
        decode_features(payload)
    assert message in str(refused.value)


def test_outputs_default_to_probability_and_label_and_may_be_chosen():
    assert requested_outputs(tensor([1, 200], ROW)) == DEFAULT_OUTPUTS
    chosen = tensor([1, 200], ROW, outputs=[{"name": "predict_proba"}, {"name": "label"},
                                           {"name": "label"}])
    assert requested_outputs(chosen) == ("predict_proba", "label")
    with pytest.raises(RequestError, match=r"unknown output\(s\) score; available: probability"):
        requested_outputs(tensor([1, 200], ROW, outputs=[{"name": "score"}]))


def test_outputs_carry_probability_label_at_the_threshold_and_the_stock_meanings():
    proba = np.array([0.05, 0.3, 0.5, 0.93])
    outputs = {o.name: o for o in encode_outputs(
        ("probability", "label", "predict", "predict_proba"), proba, threshold=0.25)}
    assert (outputs["probability"].datatype, outputs["probability"].shape) == ("FP32", [4, 1])
    np.testing.assert_allclose(outputs["probability"].data.root, proba, rtol=1e-7)
    assert outputs["label"].datatype == "INT64" and outputs["label"].data.root == [0, 1, 1, 1]
    assert outputs["predict"].data.root == [0, 0, 1, 1]      # the stock meaning: 0.5
    pairs = np.array(outputs["predict_proba"].data.root).reshape(outputs["predict_proba"].shape)
    np.testing.assert_allclose(pairs, np.column_stack([1 - proba, proba]), rtol=1e-6)


@pytest.mark.parametrize("request_id,message", [
    ("a\x00b", "U+0000"), ("line\nbreak", "U+000A"), ("euro €", "U+20AC"), ("x" * 257, "257"),
    # gRPC metadata is printable ASCII: Latin-1 letters and tabs fail there (found by fuzzing).
    ("café", "U+00E9"), ("tab\there", "U+0009")])
def test_an_id_an_http_header_cannot_carry_is_refused(request_id, message):
    with pytest.raises(RequestError, match="request id") as refused:
        check_request_id(tensor([1, 200], ROW, id=request_id))
    assert message in str(refused.value)


@pytest.mark.parametrize("request_id", [None, "", "req-1", "any ~printable! ASCII", "x" * 256])
def test_ids_a_header_can_carry_are_accepted(request_id):
    check_request_id(tensor([1, 200], ROW, id=request_id))


def test_more_rows_than_the_limit_are_refused_before_the_data_is_read():
    too_many = tensor([4, 200], [0.5] * 800)
    with pytest.raises(RequestError, match="request has 4 rows; at most 3 are accepted"):
        decode_features(too_many, max_rows=3)
    assert decode_features(too_many, max_rows=4).shape == (4, 200)
    with pytest.raises(RequestError, match="request has 2 rows; at most 1"):
        decode_features(columns(np.zeros((2, 200)), range(200)), max_rows=1)


def with_id_codes(codes_input: dict, X=ROWS) -> InferenceRequest:
    return request({"inputs": [{"name": "features", "shape": list(X.shape), "datatype": "FP64",
                                "data": X.ravel().tolist()}, {"name": "ID_code", **codes_input}]})


@pytest.mark.parametrize("shape,data", [([3], ["a", "b", "c"]), ([3, 1], [["a"], ["b"], ["c"]])])
def test_id_codes_ride_beside_the_features_and_are_not_features(shape, data):
    payload = with_id_codes({"shape": shape, "datatype": "BYTES", "data": data})
    np.testing.assert_array_equal(decode_features(payload), ROWS.astype(np.float32))
    assert decode_id_codes(payload, 3) == ["a", "b", "c"]
    # Beside named columns too, and absent when not sent.
    named = columns(ROWS, range(200))
    assert decode_id_codes(named, 3) is None
    named.inputs.append(payload.inputs[1])
    np.testing.assert_array_equal(decode_features(named), ROWS.astype(np.float32))
    assert decode_id_codes(named, 3) == ["a", "b", "c"]


@pytest.mark.parametrize("codes_input,message", [
    ({"shape": [3], "datatype": "FP32", "data": [1, 2, 3]}, "datatype FP32; expected BYTES"),
    ({"shape": [2], "datatype": "BYTES", "data": ["a", "b"]}, "shape [2]; expected [3]"),
    ({"shape": [3], "datatype": "BYTES", "data": ["a", "b"]}, "2 value(s) for 3 rows"),
    ({"shape": [3], "datatype": "BYTES", "data": ["a", "b", "x" * 65]}, "at most 64"),
])
def test_bad_id_codes_are_refused_by_name(codes_input, message):
    with pytest.raises(RequestError, match=re.escape(message)):
        decode_id_codes(with_id_codes(codes_input), 3)


def test_id_codes_alone_are_not_a_request():
    payload = request({"inputs": [{"name": "ID_code", "shape": [1], "datatype": "BYTES",
                                   "data": ["a"]}]})
    with pytest.raises(RequestError, match="only ID_code; the features are missing"):
        decode_features(payload)
