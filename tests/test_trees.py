"""Small-batch scoring: the numpy walk answers as XGBoost does, or stands aside."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from xgboost import XGBClassifier, XGBRegressor

from santander import artifact
from santander import trees
from santander.loader import load_artifact
from santander.trees import SmallBatchTrees
from tests.helpers import rows_on_split_thresholds


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 30)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] + X[:, 2] + rng.normal(size=3000) > 0.8).astype(int)
    return X, y


@pytest.fixture(scope="module")
def classifier(data):
    # Deep, pruned trees (min_child_weight, gamma): leaves end at many different levels.
    X, y = data
    return XGBClassifier(n_estimators=60, max_depth=6, min_child_weight=20, gamma=0.5,
                         learning_rate=0.3, scale_pos_weight=4.0, n_jobs=1).fit(X, y)


def _booster(model):
    booster = model.get_booster()
    booster.set_param({"nthread": 1})
    return booster


def test_probabilities_match_xgboost(classifier, data):
    X, _ = data
    booster = _booster(classifier)
    small = SmallBatchTrees.from_booster(booster)
    assert small is not None and small.depth == 6
    rows = np.vstack([X[:500], X[:50] * 10.0, -X[:50] * 10.0])   # beyond every threshold too
    np.testing.assert_allclose(small.predict(rows), booster.inplace_predict(rows), atol=1e-6)


def test_values_equal_to_a_threshold_go_right_as_in_xgboost(classifier, data):
    X, _ = data
    booster = _booster(classifier)
    small = SmallBatchTrees.from_booster(booster)
    rows = rows_on_split_thresholds(small.feature, small.threshold, 200, X.shape[1], seed=2)
    np.testing.assert_allclose(small.predict(rows), booster.inplace_predict(rows), atol=1e-6)


def test_the_serving_adapter_gives_xgboost_answers_for_every_batch_size(classifier, data,
                                                                        tmp_path):
    X, _ = data
    loaded = load_artifact(artifact.save(classifier, "xgboost", tmp_path), "xgboost")
    assert loaded.small_batches is not None
    for n in (1, 2, trees.SMALL_BATCH_ROWS, trees.SMALL_BATCH_ROWS + 1, 200):
        np.testing.assert_allclose(loaded.predict_proba(X[:n]), classifier.predict_proba(X[:n]),
                                   atol=1e-6)


def test_rows_of_the_wrong_width_are_left_to_xgboost_which_refuses_them(classifier, data,
                                                                         tmp_path):
    X, _ = data
    loaded = load_artifact(artifact.save(classifier, "xgboost", tmp_path), "xgboost")
    with pytest.raises(ValueError):
        loaded.predict_proba(X[:2, :-1])


def test_missing_values_are_left_to_xgboost(classifier, data, tmp_path):
    X, _ = data
    loaded = load_artifact(artifact.save(classifier, "xgboost", tmp_path), "xgboost")
    rows = X[:3].copy()
    rows[:, :5] = np.nan               # XGBoost sends these down each split's default branch
    np.testing.assert_allclose(loaded.predict_proba(rows)[:, 1],
                               loaded.booster.inplace_predict(rows), atol=1e-7)


@pytest.mark.parametrize("model", [
    XGBClassifier(n_estimators=5, max_depth=3, objective="multi:softprob", n_jobs=1),
    XGBRegressor(n_estimators=5, max_depth=3, n_jobs=1),
    XGBClassifier(n_estimators=5, max_depth=trees.MAX_DEPTH + 2, min_child_weight=0,
                  n_jobs=1),
], ids=["multiclass", "regressor", "too-deep"])
def test_models_it_cannot_reproduce_are_refused(model, data):
    X, y = data
    target = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if "multi" in str(
        model.get_params()["objective"]) else y
    model.fit(X, target)
    assert SmallBatchTrees.from_booster(model.get_booster()) is None


def test_a_model_it_reads_wrongly_is_caught_by_the_probe(classifier, monkeypatch):
    read = trees._tables

    def off_by_a_feature(model):
        forest = read(model)
        return dataclasses.replace(forest, feature=(forest.feature + 1) % 30)

    monkeypatch.setattr(trees, "_tables", off_by_a_feature)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert SmallBatchTrees.from_booster(_booster(classifier)) is None
    assert any("differs from XGBoost" in str(w.message) for w in caught)
