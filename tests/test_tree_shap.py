"""TreeSHAP from tables (santander/serving/tree_shap.py): XGBoost's own pred_contribs numbers,
or it stands aside."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import xgboost
from xgboost import XGBClassifier

from santander import artifact
from santander.serving import tree_shap
from santander.serving.explain import explainer_for
from santander.serving.loader import load_artifact
from santander.serving.tree_shap import TreeShapTables
from tests.helpers import rows_on_split_thresholds


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] + X[:, 2] - 0.5 * X[:, 3] ** 2 + rng.normal(size=3000) > 0.3)
    return X, y.astype(int)


def pred_contribs(booster, X: np.ndarray) -> np.ndarray:
    return booster.predict(xgboost.DMatrix(X, nthread=1), pred_contribs=True)


MODELS = {
    # Full trees; a feature split twice on one path is certain with 4 features at depth 5.
    "depth 5, repeated features": dict(n_estimators=40, max_depth=5, colsample_bytree=0.34),
    # Pruned trees: leaves at many levels, so padded splits and their cover-0 sides.
    "pruned": dict(n_estimators=60, max_depth=6, min_child_weight=30, gamma=1.0),
    "stumps, base score 0.2": dict(n_estimators=200, max_depth=1, base_score=0.2),
    "depth 2, weighted": dict(n_estimators=300, max_depth=2, scale_pos_weight=5.0,
                              learning_rate=0.3),
}


@pytest.mark.parametrize("params", MODELS.values(), ids=MODELS.keys())
def test_the_tables_give_xgboosts_own_contributions(params, data):
    X, y = data
    booster = XGBClassifier(n_jobs=1, **params).fit(X, y).get_booster()
    tables = TreeShapTables.from_booster(booster)
    assert tables is not None
    rows = np.vstack([X[:300], X[:20] * 10.0, -X[:20] * 10.0])     # beyond every split too
    np.testing.assert_allclose(tables.contributions(rows), pred_contribs(booster, rows),
                               atol=2e-6)
    # One row alone, and a batch across the lookup's chunks, answer the same.
    np.testing.assert_allclose(tables.contributions(rows[:1]), pred_contribs(booster, rows[:1]),
                               atol=2e-6)
    n = tree_shap.ROWS_PER_LOOKUP + 5
    np.testing.assert_array_equal(tables.contributions(rows[:n])[-5:],
                                  tables.contributions(rows[n - 5:n]))


def test_values_equal_to_a_threshold_go_right_as_in_xgboost(data):
    X, y = data
    booster = XGBClassifier(n_estimators=50, max_depth=4, n_jobs=1).fit(X, y).get_booster()
    tables = TreeShapTables.from_booster(booster)
    rows = rows_on_split_thresholds(tables.feature, tables.threshold, 100, X.shape[1], seed=4)
    np.testing.assert_allclose(tables.contributions(rows), pred_contribs(booster, rows),
                               atol=2e-6)


def test_the_served_explainer_uses_the_tables_and_xgboost_for_missing_values(data, tmp_path):
    X, y = data
    classifier = XGBClassifier(n_estimators=80, max_depth=4, n_jobs=1).fit(X, y)
    served = load_artifact(artifact.save(classifier, "xgboost", tmp_path), "xgboost")
    explain = explainer_for(served)
    booster = served.booster
    np.testing.assert_allclose(explain(X[:50]), pred_contribs(booster, X[:50]), atol=2e-6)
    missing = X[:3].copy()
    missing[:, :4] = np.nan            # the tables do not know the default branches
    np.testing.assert_allclose(explain(missing), pred_contribs(booster, missing), atol=1e-7)


def test_a_model_the_tables_misread_is_caught_by_the_probe(data, monkeypatch):
    X, y = data
    booster = XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(X, y).get_booster()
    read = tree_shap.read_forest

    def off_by_a_feature(model):
        forest = read(model)
        return dataclasses.replace(forest, feature=(forest.feature + 1) % X.shape[1])

    monkeypatch.setattr(tree_shap, "read_forest", off_by_a_feature)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert TreeShapTables.from_booster(booster) is None
    assert any("differ from XGBoost" in str(w.message) for w in caught)


def test_tables_too_big_are_not_made_and_xgboost_explains(data, tmp_path, monkeypatch):
    X, y = data
    classifier = XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(X, y)
    monkeypatch.setattr(tree_shap, "MAX_TABLE_VALUES", 30 * 4 ** 3 * 3 - 1)
    assert TreeShapTables.from_booster(classifier.get_booster()) is None
    served = load_artifact(artifact.save(classifier, "xgboost", tmp_path), "xgboost")
    np.testing.assert_allclose(explainer_for(served)(X[:5]),
                               pred_contribs(served.booster, X[:5]), atol=1e-7)
