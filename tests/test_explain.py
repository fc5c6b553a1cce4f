"""Explanations (santander/serving/explain.py): per family, exported and loaded as the server
loads them, each row's contributions sum to the logit of the served probability; the runtime
offers them as the `contributions` output and refuses them where no exact form exists."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from mlserver.types import InferenceRequest

from santander.export import export_version
from santander.schema import N_FEATURES
from santander.serving.codec import RequestError
from santander.serving.explain import explainer_for
from santander.loader import load_version
from santander.training.candidates import FAMILIES
from tests.test_runtime import loaded

EXACT = ("logistic", "naive_bayes", "histogram_nb", "additive", "xgboost", "lightgbm")


@pytest.fixture(scope="module")
def exported(wide_data, tmp_path_factory) -> dict:
    X, y = wide_data
    versions = {}
    for family in FAMILIES:
        estimator = family.build(**family.configurations(quick=True)[0]).fit(X, y)
        versions[family.name] = export_version(estimator, family.artifact_format, 0.3,
                                               {"family": family.name},
                                               tmp_path_factory.mktemp(family.name))
    return versions


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def assert_sum_to_logit(contributions: np.ndarray, probability: np.ndarray) -> None:
    """Rows sum to logit(probability) within 1e-4 where the probability's own precision can
    tell (a float32 probability of 0.99994 fixes its logit only to ~1e-3), and reproduce the
    probability itself everywhere."""
    total = contributions.sum(axis=1)
    probability = np.asarray(probability, dtype=np.float64)
    resolvable = np.abs(logit(probability)) < 7
    assert resolvable.sum() >= len(probability) // 2
    np.testing.assert_allclose(total[resolvable], logit(probability[resolvable]), atol=1e-4)
    np.testing.assert_allclose(1 / (1 + np.exp(-total)), probability, atol=1e-6)


def test_every_family_but_one_has_an_exact_form():
    assert sorted(EXACT + ("extra_trees",)) == sorted(f.name for f in FAMILIES)


@pytest.mark.parametrize("family", EXACT)
def test_contributions_sum_to_the_logit_of_the_served_probability(family, exported,
                                                                  wide_data):
    model, _ = load_version(exported[family])
    explain = explainer_for(model)
    X = np.vstack([wide_data[0][:40], wide_data[0][:1] * 3.0])   # and a row off the grid
    contributions = explain(X)
    assert contributions.shape == (len(X), N_FEATURES + 1)
    assert_sum_to_logit(contributions, model.predict_proba(X)[:, 1])
    # The informative feature (var_0) moves the score; the bias is the same for every row.
    assert np.ptp(contributions[:, 0]) > 0
    assert np.ptp(contributions[:, -1]) == 0


def test_contributions_are_per_feature(exported, wide_data):
    """Changing one feature moves only that feature's term (an additive family)."""
    model, _ = load_version(exported["naive_bayes"])
    explain = explainer_for(model)
    row = wide_data[0][:1].astype(np.float64)
    moved = row.copy()
    moved[0, 7] += 2.0
    difference = explain(moved) - explain(row)
    assert difference[0, 7] != 0
    assert np.count_nonzero(difference) == 1


def test_extra_trees_has_none(exported):
    model, _ = load_version(exported["extra_trees"])
    assert explainer_for(model) is None


def request(X: np.ndarray, outputs: list[str] | None = None) -> InferenceRequest:
    body = {"inputs": [{"name": "features", "shape": list(X.shape), "datatype": "FP32",
                        "data": X.ravel().tolist()}]}
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return InferenceRequest.model_validate(body)


def test_the_runtime_answers_contributions_beside_the_probability(exported, wide_data):
    X = wide_data[0][:3]
    model = loaded(exported["xgboost"])
    response = asyncio.run(model.predict(request(X, ["probability", "contributions"])))
    outputs = {o.name: o for o in response.outputs}
    assert outputs["contributions"].shape == [3, N_FEATURES + 1]
    assert outputs["contributions"].datatype == "FP64"
    contributions = np.asarray(outputs["contributions"].data.root).reshape(3, N_FEATURES + 1)
    assert_sum_to_logit(contributions, outputs["probability"].data.root)


def test_the_default_outputs_do_not_change(exported, wide_data):
    response = asyncio.run(loaded(exported["histogram_nb"]).predict(request(wide_data[0][:2])))
    assert [o.name for o in response.outputs] == ["probability", "label"]


def test_a_family_without_an_exact_form_is_refused_by_name(exported, wide_data):
    model = loaded(exported["extra_trees"])
    with pytest.raises(RequestError, match="extra_trees has no exact per-feature explanation"):
        asyncio.run(model.predict(request(wide_data[0][:1], ["contributions"])))
    # The same model still answers the default outputs.
    assert asyncio.run(model.predict(request(wide_data[0][:1]))).outputs
