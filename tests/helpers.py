"""Shared by the test modules that talk to a served model."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from santander.loader import load_version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import request as client  # noqa: E402,F401  (the top-level request.py, as users run it)


def rows_on_split_thresholds(feature: np.ndarray, threshold: np.ndarray, n_rows: int,
                             width: int, seed: int) -> np.ndarray:
    """Rows whose every feature sits on one of its own split thresholds (a tree layout's
    `feature` and `threshold` arrays): every comparison is a tie."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n_rows, width), dtype=np.float32)
    for f in range(width):
        cuts = threshold[(feature == f) & np.isfinite(threshold)]
        if cuts.size:
            rows[:, f] = rng.choice(cuts, size=n_rows)
    return rows


def exported_model(version_dir: Path):
    """The version's artifact, loaded as the runtime loads it."""
    return load_version(version_dir)[0]


_GRPC_CLIENT = """
import json, sys
import numpy as np
import request
address, model, request_id = sys.argv[1:4]
X = np.asarray(json.loads(sys.stdin.read()))
print(json.dumps(request.infer_grpc(address, model, None, X, request_id=request_id)))
"""


def infer_grpc(address: str, model: str, X: np.ndarray, request_id: str) -> dict:
    """request.py's gRPC answer, asked from a process of its own. Its client (tritonclient)
    registers gRPC protos under the same names as MLServer's, which the test process imports."""
    done = subprocess.run([sys.executable, "-c", _GRPC_CLIENT, address, model, request_id],
                          input=json.dumps(np.asarray(X).tolist()), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def log_counters(metrics_url: str) -> dict[str, float]:
    """The prediction log's written and dropped rows, from the server's metrics port."""
    from bench.load import metrics_counter
    return {kind: metrics_counter(metrics_url, f"santander_log_{kind}_rows_total")
            for kind in ("written", "dropped")}


def log_settled(metrics_url: str, timeout: float = 60.0) -> None:
    """Wait until the server's log has handled every row it was given: nothing queued."""
    from bench.load import metrics_counter, wait_until_logged
    wait_until_logged(metrics_url, timeout)
    assert metrics_counter(metrics_url, "santander_log_queued_rows") == 0, "the log never settled"


def two_versions(repo: Path) -> np.ndarray:
    """Two versions in `repo` that answer differently, and 40 rows to ask them about."""
    from santander.export import export_version
    from santander.training.candidates import get_family
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 200)).astype(np.float32)
    for feature in (0, 1):
        y = (X[:, feature] > 0.5).astype(int)
        model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, y)
        export_version(model, "joblib", 0.5, {"family": "naive_bayes"}, repo)
    return X[:40]


# Prediction logs written directly, for what reads them (compare, the page) -----------------

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
NAME = "xgboost-model"


def truth_and_scores(seed: int, n: int, noise: dict[str, float]):
    """Outcomes (10% positive) and, per version, scores that follow them up to `noise`."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    scores = {v: 1 / (1 + np.exp(-(3 * y - 1.5 + rng.normal(0, sd, n)))) for v, sd in
              noise.items()}
    return y, scores


def write_log(url: str, y: np.ndarray | None, scores: dict[str, np.ndarray],
              threshold: float = 0.5):
    """A prediction log where every version scored the same requests (4 rows each), and the
    outcomes of them all (unless y is None)."""
    from sqlalchemy import insert
    from santander.prediction_log.tables import connect, outcomes, predictions
    engine = connect(url)
    n = len(next(iter(scores.values())))
    keys = [(f"req-{i // 4}", i % 4) for i in range(n)]
    with engine.begin() as connection:
        for version, proba in scores.items():
            connection.execute(insert(predictions), [
                {"logged_at": NOW, "request_id": r, "row_index": k, "model_name": NAME,
                 "model_version": version, "features": b"\0" * 800, "probability": float(p),
                 "label": int(p >= threshold), "threshold": threshold, "latency_ms": 1.0}
                for (r, k), p in zip(keys, proba)])
        if y is not None:
            connection.execute(insert(outcomes), [
                {"recorded_at": NOW, "request_id": r, "row_index": k, "target": int(t)}
                for (r, k), t in zip(keys, y)])
    return engine
