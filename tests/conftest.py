"""Shared fixtures: small generated data files, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from santander.data.io import write_frame
from santander.data.synthetic import generate

SHARED_STATS = Path(__file__).resolve().parents[2] / "shared" / "santander-stats"


@pytest.fixture(scope="session", autouse=True)
def tracking_store(tmp_path_factory):
    """Every run the tests make is tracked in a store of their own, not the user's mlruns/
    (set in the environment, so subprocesses such as the notebook's kernel use it too)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


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
    from santander.train import run
    root = tmp_path_factory.mktemp("trained")
    outcome = run(small_parquet, quick=True, repository=root / "deploy",
                  reports_dir=root / "reports", progress=False)
    return root, outcome
