"""Property-based tests of the V2 codec and the runtime, in-process (hypothesis).

Requests are generated as MLServer receives them: any JSON body that parses as a V2
`InferenceRequest` (bodies that do not are MLServer's own 422, before our code runs). For
every one, the codec and the runtime either answer or refuse with an MLServer error, whose
status is a 4xx: never another exception, which the server would turn into a 500.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest
from pydantic import ValidationError

from santander.serving.codec import (RequestError, check_request_id, decode_features,
                                     requested_outputs)
from v2_strategies import FINITE_ROWS, bodies, examples

def parsed(body: dict) -> InferenceRequest | None:
    try:
        return InferenceRequest.model_validate(body)
    except ValidationError:
        event("not a V2 request (MLServer's 422)")
        return None


@settings(max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_the_codec_answers_or_refuses_every_request(body):
    request = parsed(body)
    if request is None:
        return
    try:
        check_request_id(request)
        requested_outputs(request)
        X = decode_features(request, max_rows=10_000)
    except RequestError as refused:
        assert str(refused) and refused.status_code == 400
        event(f"refused: {' '.join(str(refused).split()[:3])}")
        return
    event("decoded")
    assert X.dtype == np.float32 and X.ndim == 2 and X.shape[1] == 200 and len(X) >= 1
    assert np.isfinite(X).all()


@settings(max_examples=examples(100), deadline=None)
@given(FINITE_ROWS, st.sampled_from(["FP32", "FP64"]), st.booleans())
def test_any_finite_fp32_rows_decode_exactly_as_tensor_or_columns(rows, datatype, as_columns):
    X = np.array(rows, dtype=np.float32)
    if as_columns:
        order = np.random.default_rng(len(X)).permutation(200)
        body = {"inputs": [{"name": f"var_{j}", "shape": [len(X), 1], "datatype": datatype,
                            "data": X[:, j].tolist()} for j in order]}
    else:
        body = {"inputs": [{"name": "features", "shape": list(X.shape), "datatype": datatype,
                            "data": X.tolist()}]}
    np.testing.assert_array_equal(decode_features(InferenceRequest.model_validate(body)), X)


@pytest.fixture(scope="module")
def runtime(wide_data, tmp_path_factory):
    from mlserver.repository.load import load_model_settings
    from santander.export import export_version
    from santander.layout import SETTINGS_FILE
    from santander.serving.runtime import SantanderRuntime
    from santander.training.candidates import get_family
    X, y = wide_data
    version = export_version(get_family("histogram_nb").build().fit(X, y), "additive", 0.5,
                             {}, tmp_path_factory.mktemp("repo"))
    model = SantanderRuntime(load_model_settings(str(version / SETTINGS_FILE)))
    asyncio.run(model.load())
    return model


@settings(max_examples=examples(300), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=bodies())
def test_the_runtime_answers_or_refuses_with_a_4xx_every_request(runtime, body):
    request = parsed(body)
    if request is None:
        return
    try:
        response = asyncio.run(runtime.predict(request))
    except MLServerError as refused:
        assert 400 <= refused.status_code < 500 and str(refused)
        event(f"refused with {refused.status_code}")
        return
    event("answered")
    probability = {o.name: o for o in response.outputs}.get("probability")
    if probability is not None:
        values = np.asarray(probability.data.root)
        assert np.all((values >= 0) & (values <= 1))
