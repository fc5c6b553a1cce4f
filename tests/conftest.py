"""Shared fixtures: small generated data files, made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings

from tests.v2_strategies import PROFILE_SCALE

from santander.training.data.io import write_frame
from santander.training.data.synthetic import generate

# HYPOTHESIS_PROFILE=quick | default | thorough scales every property test's example count.
for _profile in PROFILE_SCALE:
    hypothesis_settings.register_profile(_profile, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_STATS = SHARED / "santander-stats"


def require_shared(path: Path, what: str) -> None:
    """Skip a test whose material from ../shared (beside the project root) is missing, saying
    what and where. CI sets SANTANDER_REQUIRE_SHARED=1: there a missing file fails instead."""
    if path.exists():
        return
    message = f"{what} not found at {path} (../shared beside the project root)"
    if os.environ.get("SANTANDER_REQUIRE_SHARED") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def tracking_store(tmp_path_factory):
    """Every run the tests make is tracked in a store of their own, not the user's mlruns/
    (set in the environment, so subprocesses such as the notebook's kernel use it too)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture(scope="session")
def wide_data() -> tuple[np.ndarray, np.ndarray]:
    """400 rows of 200 features, one of them informative: enough for any family to fit."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 200)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=400) > 1).astype(int)
    return X, y


def assert_calibrated(proba: np.ndarray, observed: np.ndarray, sigmas: float,
                      slack: float) -> None:
    """Rows binned in deciles of proba are positive at the rate proba predicts: within
    `sigmas` binomial standard errors, plus `slack`."""
    edges = np.quantile(proba, np.linspace(0, 1, 11))
    deciles = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, 9)
    for d in range(10):
        rows = deciles == d
        predicted, rate = proba[rows].mean(), observed[rows].mean()
        noise = np.sqrt(predicted * (1 - predicted) / rows.sum())
        assert abs(rate - predicted) < sigmas * noise + slack, (d, predicted, rate)


@pytest.fixture(scope="session")
def small_frame():
    return generate(3_000, seed=7)


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory, small_frame) -> Path:
    return write_frame(small_frame, tmp_path_factory.mktemp("data") / "train.csv")


@pytest.fixture(scope="session")
def small_parquet(tmp_path_factory, small_frame) -> Path:
    return write_frame(small_frame, tmp_path_factory.mktemp("data") / "train.parquet")


@pytest.fixture(scope="session")
def trained_repository(tmp_path_factory, small_parquet):
    """One quick training run exported into a fresh repository (shared by several tests)."""
    from santander.training.train import RunOptions, run
    root = tmp_path_factory.mktemp("trained")
    outcome = run(small_parquet, RunOptions(quick=True, repository=root / "deploy",
                                            reports_dir=root / "reports", progress=False))
    return root, outcome


@pytest.fixture(scope="session")
def three_versions(tmp_path_factory):
    """Three versions: 1 intact, 2 retired, 3 with a damaged artifact."""
    from santander.export import export_version
    from santander.layout import RETIRED_MARKER, models_dir
    from santander.training.candidates import get_family
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 200)).astype(np.float32)
    y = (X[:, 0] > 1).astype(int)
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y)
    root = tmp_path_factory.mktemp("repo")
    for _ in range(3):
        export_version(model, "joblib", 0.5, {"family": "naive_bayes"}, root)
    versions = models_dir(root)
    (versions / "2" / RETIRED_MARKER).write_text("retired\n")
    with open(versions / "3" / "model.joblib", "ab") as handle:
        handle.write(b"damage")
    return root
