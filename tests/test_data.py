"""The schema, the generator against the published statistics, and strict validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from santander.training.data.io import load_features, load_training_data, write_frame
from santander.schema import FEATURES, REAL_POSITIVE_RATE
from santander.training.data.stats import derive_feature_table, load_feature_table
from santander.training.data.synthetic import GENERATORS, generate, santander_like
from santander.errors import DataError

from conftest import SHARED_STATS, assert_calibrated, require_shared


def test_packaged_table_is_derived_from_the_published_files():
    require_shared(SHARED_STATS, "the published statistics")
    derived = derive_feature_table(SHARED_STATS)
    packaged = load_feature_table()
    pd.testing.assert_frame_equal(derived, packaged, check_exact=False, atol=1e-6)


@pytest.fixture(scope="module")
def large_sample():
    return generate(100_000, seed=3)


def test_generated_statistics_match_the_published_ones(large_sample):
    table = load_feature_table()
    X = large_sample[list(FEATURES)]
    y = large_sample["target"].to_numpy()
    std = table["std"].to_numpy()
    assert abs(y.mean() - REAL_POSITIVE_RATE) < 1e-4
    # Marginal mean and spread, in units of the published std.
    assert np.abs((X.mean().to_numpy() - table["mean"].to_numpy()) / std).max() < 0.03
    assert np.abs(X.std().to_numpy() / std - 1).max() < 0.03
    # Range: inside the published [min, max].
    assert (X.min().to_numpy() >= table["min"].to_numpy()).all()
    assert (X.max().to_numpy() <= table["max"].to_numpy()).all()
    # Class-conditional 1% and 99% quantiles (the per-class shift and spread).
    for cls in (0, 1):
        rows = X[y == cls]
        tolerance = 0.05 if cls == 0 else 0.12   # ~10,000 positives: more sampling noise
        for q, column in ((0.01, f"q01_{cls}"), (0.99, f"q99_{cls}")):
            error = (rows.quantile(q).to_numpy() - table[column].to_numpy()) / std
            assert np.abs(error).max() < tolerance, (cls, q, np.abs(error).max())


@pytest.mark.slow
def test_generated_features_are_weakly_predictive_and_independent_given_class(large_sample):
    X = large_sample[list(FEATURES)].to_numpy()
    y = large_sample["target"].to_numpy()
    from sklearn.metrics import roc_auc_score
    single = [roc_auc_score(y, X[:, j]) for j in range(len(FEATURES))]
    strength = np.abs(np.array(single) - 0.5)
    assert strength.max() < 0.1          # each feature alone is weak ...
    assert (strength > 0.01).sum() > 100  # ... but most carry some signal
    corr = np.corrcoef(X[y == 0][:20_000].T)
    off_diagonal = np.abs(corr[~np.eye(len(FEATURES), dtype=bool)])
    assert off_diagonal.max() < 0.05


def test_values_are_written_with_four_decimals_like_the_real_file(large_sample):
    X = large_sample[list(FEATURES)].to_numpy()[:5_000]
    np.testing.assert_allclose(X * 10_000, np.rint(X * 10_000), atol=1e-6)


@pytest.mark.parametrize("generator", ["santander", "alternative"])
def test_posterior_matches_the_observed_positive_rate_in_every_bin(generator):
    """The generator's exact posterior: rows binned by it are positive at the predicted rate."""
    frame = generate(100_000, seed=11, generator=generator)
    posterior = GENERATORS[generator]().posterior(frame[list(FEATURES)].to_numpy())
    assert_calibrated(posterior, frame["target"].to_numpy(), sigmas=4, slack=1e-3)


def test_no_fitted_model_beats_the_posterior_on_fresh_rows():
    from sklearn.metrics import roc_auc_score
    from sklearn.naive_bayes import GaussianNB
    train, fresh = generate(20_000, seed=1), generate(20_000, seed=2)
    X, y = fresh[list(FEATURES)].to_numpy(), fresh["target"].to_numpy()
    bayes = roc_auc_score(y, santander_like().posterior(X))
    model = GaussianNB().fit(train[list(FEATURES)].to_numpy(), train["target"].to_numpy())
    fitted = roc_auc_score(y, model.predict_proba(X)[:, 1])
    assert 0.85 < bayes < 0.95          # the calibrated range (BENCHMARKS.md: Quality)
    assert fitted < bayes


def test_generator_is_deterministic_and_seeded():
    a, b, c = generate(500, seed=1), generate(500, seed=1), generate(500, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a[list(FEATURES)].equals(c[list(FEATURES)])
    assert list(a.columns) == ["ID_code", "target", *FEATURES]
    assert a["ID_code"].is_unique


@pytest.mark.parametrize("fixture", ["small_csv", "small_parquet"])
def test_reads_csv_and_parquet_alike(fixture, request, small_frame):
    data = load_training_data(request.getfixturevalue(fixture))
    assert data.X.shape == (len(small_frame), 200)
    assert data.X.dtype == np.float32
    np.testing.assert_allclose(data.X, small_frame[list(FEATURES)].to_numpy(), atol=1e-4)
    assert data.positives == int(small_frame["target"].sum())
    assert data.fingerprint.startswith("sha256:")


def test_fingerprint_changes_with_the_data(small_frame, tmp_path):
    changed = small_frame.copy()
    changed.loc[0, "var_0"] += 1
    a = load_training_data(write_frame(small_frame, tmp_path / "a.parquet"))
    b = load_training_data(write_frame(changed, tmp_path / "b.parquet"))
    assert a.fingerprint != b.fingerprint


def test_load_features_accepts_a_kaggle_test_file_without_target(small_frame, tmp_path):
    path = write_frame(small_frame.drop(columns=["target"]), tmp_path / "test.csv")
    X, ids = load_features(path, rows=5)
    assert X.shape == (5, 200) and list(ids) == list(small_frame["ID_code"][:5])


def test_write_frame_refuses_unknown_suffix_and_writes_nothing(small_frame, tmp_path):
    with pytest.raises(DataError, match="unsupported file type"):
        write_frame(small_frame, tmp_path / "data.xlsx")
    assert list(tmp_path.iterdir()) == []
