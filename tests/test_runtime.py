"""The runtime in-process, as MLServer's own runtime tests drive theirs: settings read as the
server reads them, `await model.load()`, then `predict`. The real server (tests/test_serve.py)
adds HTTP and gRPC around exactly this."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref

import numpy as np
import pytest
from mlserver.repository.load import load_model_settings
from mlserver.types import InferenceRequest
from prometheus_client import REGISTRY

from santander.errors import ArtifactError
from santander.export import export_version
from santander.layout import SETTINGS_FILE
from santander.serving.codec import RequestError
from santander.serving.limits import PayloadTooLarge, RequestLimits
from santander.loader import load_version
from santander.serving.runtime import SantanderRuntime
from santander.training.candidates import get_family

# One family per artifact format: additive table, native XGBoost, joblib.
FAMILIES = ("histogram_nb", "xgboost", "logistic")


@pytest.fixture(scope="module")
def versions(wide_data, tmp_path_factory) -> dict:
    """Each family fitted and exported once, as version 1 of its own repository."""
    X, y = wide_data
    exported = {}
    for name in FAMILIES:
        family = get_family(name)
        estimator = family.build(**family.configurations(quick=True)[0])
        exported[name] = export_version(estimator.fit(X, y), family.artifact_format, 0.3,
                                        {"family": name}, tmp_path_factory.mktemp(name))
    return exported


def loaded(version_dir, limits: dict | None = None, **settings) -> SantanderRuntime:
    model_settings = load_model_settings(str(version_dir / SETTINGS_FILE))
    for key, value in settings.items():
        setattr(model_settings, key, value)
    if limits is not None:
        model_settings.parameters.extra["limits"] = limits
    model = SantanderRuntime(model_settings)
    assert asyncio.run(model.load()) is True
    return model


def infer(rows: np.ndarray, **extra) -> InferenceRequest:
    return InferenceRequest.model_validate({"inputs": [{
        "name": "features", "shape": list(rows.shape), "datatype": "FP32",
        "data": rows.ravel().tolist()}], **extra})


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_runtime_answers_what_the_version_predicts(family, versions, wide_data):
    X = wide_data[0][:9]
    model = loaded(versions[family])
    response = asyncio.run(model.predict(infer(X, id="req-1")))
    expected, threshold = load_version(versions[family])
    proba = expected.predict_proba(X)[:, 1]
    outputs = {o.name: o for o in response.outputs}
    assert (response.id, response.model_name, response.model_version) == \
        ("req-1", "xgboost-model", "1")
    np.testing.assert_allclose(outputs["probability"].data.root, proba, rtol=1e-5)
    assert outputs["label"].data.root == [int(p >= threshold) for p in proba]
    assert threshold == 0.3


def batch_calls(model: SantanderRuntime) -> tuple[float, float]:
    """(model calls, rows scored) so far, from the runtime's Prometheus histogram."""
    labels = {"model_name": model.name, "model_version": model.version}
    return (REGISTRY.get_sample_value("santander_batch_rows_count", labels) or 0.0,
            REGISTRY.get_sample_value("santander_batch_rows_sum", labels) or 0.0)


def test_requests_that_arrive_together_are_scored_together_each_with_its_own_rows(
        versions, wide_data):
    X = wide_data[0]
    model = loaded(versions["histogram_nb"], max_batch_size=16, max_batch_time=0.05)
    slices = [(k * 10, k * 10 + 1 + k % 4) for k in range(6)]
    bad = InferenceRequest.model_validate({"inputs": [{
        "name": "features", "shape": [1, 199], "datatype": "FP32", "data": [0.0] * 199}]})
    calls_before, rows_before = batch_calls(model)

    async def together():
        requests = [model.predict(infer(X[lo:hi], id=f"r{k}")) for k, (lo, hi) in
                    enumerate(slices)]
        return await asyncio.gather(*requests[:3], model.predict(bad), *requests[3:],
                                    return_exceptions=True)
    answers = asyncio.run(together())
    refused = answers.pop(3)
    assert isinstance(refused, RequestError) and "shape [1, 199]" in str(refused)
    calls, rows = batch_calls(model)
    assert calls - calls_before == 1      # one model call for all six good requests
    assert rows - rows_before == sum(hi - lo for lo, hi in slices)
    expected, _ = load_version(versions["histogram_nb"])
    for k, ((lo, hi), answer) in enumerate(zip(slices, answers)):
        assert answer.id == f"r{k}"
        probability = {o.name: o.data.root for o in answer.outputs}["probability"]
        np.testing.assert_allclose(probability, expected.predict_proba(X[lo:hi])[:, 1],
                                   rtol=1e-5)


def scored_rows(model: SantanderRuntime) -> dict[str, float]:
    """Rows answered so far, by label, from the runtime's Prometheus counter."""
    return {label: REGISTRY.get_sample_value("santander_scored_rows_total", {
        "model_name": model.name, "model_version": model.version, "label": label}) or 0.0
            for label in ("0", "1")}


def test_answered_rows_are_counted_by_the_label_they_were_given(versions, wide_data):
    model = loaded(versions["logistic"])
    before = scored_rows(model)
    labels = []
    for lo, hi in ((0, 7), (7, 40), (40, 41)):
        response = asyncio.run(model.predict(infer(wide_data[0][lo:hi])))
        labels += {o.name: o.data.root for o in response.outputs}["label"]
    after = scored_rows(model)
    assert 0 < labels.count(1) < len(labels)
    assert after["1"] - before["1"] == labels.count(1)
    assert after["0"] - before["0"] == labels.count(0)


def test_without_batching_each_request_is_its_own_model_call(versions, wide_data):
    model = loaded(versions["logistic"], max_batch_size=1)
    calls_before, _ = batch_calls(model)
    asyncio.run(model.predict(infer(wide_data[0][:2])))
    asyncio.run(model.predict(infer(wide_data[0][2:5])))
    assert batch_calls(model)[0] - calls_before == 2


def test_metadata_carries_the_threshold_and_the_model_card(versions):
    metadata = asyncio.run(loaded(versions["xgboost"]).metadata())
    assert metadata.parameters.threshold == 0.3
    assert metadata.parameters.model_card == {"family": "xgboost", "version": "1"}


def test_a_damaged_artifact_fails_load_naming_the_model_and_version(versions, tmp_path):
    import shutil
    version = tmp_path / "1"
    shutil.copytree(versions["histogram_nb"], version)
    settings = json.loads((version / SETTINGS_FILE).read_text())
    artifact = version / settings["parameters"]["uri"]
    artifact.write_bytes(artifact.read_bytes() + b"!")
    with pytest.raises(ArtifactError, match="model xgboost-model version 1 cannot load"):
        loaded(version)


def test_requests_past_the_version_limits_are_refused_with_the_limit_named(versions, wide_data):
    model = loaded(versions["logistic"], limits={"max_rows": 3, "max_body_bytes": 5_000})
    with pytest.raises(RequestError, match="request has 4 rows; at most 3"):
        asyncio.run(model.predict(infer(wide_data[0][:4])))
    big = infer(wide_data[0][:1], parameters={"headers": {"Content-Length": "5001"}})
    with pytest.raises(PayloadTooLarge, match="request body is 5,001 bytes; at most 5,000") as e:
        asyncio.run(model.predict(big))
    assert e.value.status_code == 413
    small = infer(wide_data[0][:3], parameters={"headers": {"content-length": "5000"}})
    assert asyncio.run(model.predict(small)).outputs[0].shape == [3, 1]


def test_export_writes_the_default_limits_and_bad_limits_fail_load(versions):
    settings = json.loads((versions["logistic"] / SETTINGS_FILE).read_text())
    written = settings["parameters"]["extra"]["limits"]
    assert RequestLimits.from_settings({"limits": written}) == RequestLimits()
    assert set(written) == {"max_rows", "max_body_bytes"}
    for bad in ({"max_rows": 0}, {"max_rows": "many"}, {"timeout": 3}):
        with pytest.raises(ArtifactError, match="limit"):
            loaded(versions["logistic"], limits=bad)


def test_an_unloaded_version_is_freed_without_waiting_for_the_cyclic_collector(versions,
                                                                               wide_data):
    """The serving thresholds (gc_tuning) leave reference cycles for full collections that
    busy servers rarely reach: a version that sat in one kept its model for minutes (the soak
    grew ~3 MiB a version change). Through MLServer's own registry and batching hook, as the
    server loads and unloads it, the version's model must go when the version does."""
    from mlserver.batching.hooks import load_batching
    from mlserver.registry import MultiModelRegistry

    async def load_score_unload() -> weakref.ref:
        registry = MultiModelRegistry(on_model_load=[load_batching])
        settings = load_model_settings(str(versions["histogram_nb"] / SETTINGS_FILE))
        model = await registry.load(settings)
        await model.predict(infer(wide_data[0][:3]))
        freed = weakref.ref(model._model)
        await registry.unload_version(settings.name, settings.version)
        return freed

    gc.collect()
    gc.disable()
    try:
        freed = asyncio.run(load_score_unload())
        assert freed() is None, [type(r).__name__ for r in gc.get_referrers(freed())]
    finally:
        gc.enable()
