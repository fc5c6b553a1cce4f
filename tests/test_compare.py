"""`santander compare` and `promote --if-better` on prediction logs whose truth is known: a
version made better is found better, the same model twice is never called better, and what
cannot be compared is one line."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sqlalchemy import insert

from santander.cli import main
from santander.errors import DataError
from santander.export import export_version
from santander.layout import read_default
from santander.monitoring.compare import (A_BETTER, B_BETTER, NO_EVIDENCE, compare_versions,
                                          shared_rows)
from santander.prediction_log.tables import log_url, predictions
from santander.training.candidates import get_family

from helpers import NOW, truth_and_scores, write_log

NAME = "xgboost-model"


def test_a_version_made_better_is_found_better_with_the_metrics_sklearn_gives(tmp_path):
    y, scores = truth_and_scores(0, 4_000, {"1": 2.0, "2": 0.8})
    engine = write_log(f"sqlite:///{tmp_path / 'log.sqlite'}", y, scores)
    found = compare_versions(engine, NAME, "1", "2")
    assert found.verdict == B_BETTER and "B is better: F1" in found.why()
    assert compare_versions(engine, NAME, "2", "1").verdict == A_BETTER
    assert (found.shared_rows, found.labelled_rows) == (4_000, 4_000)
    for version, side in (("1", 0), ("2", 1)):
        label = (scores[version] >= 0.5).astype(int)
        expected = {"f1": f1_score(y, label), "precision": precision_score(y, label),
                    "recall": recall_score(y, label), "roc_auc": roc_auc_score(y, scores[version])}
        for metric, value in expected.items():
            assert found.metrics[metric][side] == pytest.approx(value)
    for metric, (low, high) in found.intervals.items():
        a, b = found.metrics[metric]
        assert low < b - a < high, metric


def test_the_same_model_twice_is_no_evidence_for_95_of_100_seeds(tmp_path):
    verdicts = []
    for seed in range(100):
        y, scores = truth_and_scores(seed, 400, {"model": 1.5})
        engine = write_log(f"sqlite:///{tmp_path / f'log-{seed}.sqlite'}", y,
                           {"1": scores["model"], "2": scores["model"]})
        verdicts.append(compare_versions(engine, NAME, "1", "2", seed=seed).verdict)
        engine.dispose()
    assert verdicts.count(NO_EVIDENCE) >= 95


def test_without_outcomes_only_agreement_and_the_score_shift(tmp_path):
    _, scores = truth_and_scores(1, 2_000, {"1": 1.0, "2": 1.0})
    scores["2"] = np.clip(scores["2"] + 0.2, 0, 1)                # B scores everything higher
    engine = write_log(f"sqlite:///{tmp_path / 'log.sqlite'}", None, scores)
    found = compare_versions(engine, NAME, "1", "2")
    assert found.metrics == {} and found.verdict == NO_EVIDENCE
    assert "no outcomes recorded for the 2,000 rows" in found.why()
    labels = [(scores[v] >= 0.5) for v in ("1", "2")]
    assert found.agreement == pytest.approx(np.mean(labels[0] == labels[1]))
    assert found.positive_rate[1] > found.positive_rate[0]
    assert found.score_shift > 0.1


def test_a_handful_of_labelled_rows_gives_no_verdict(tmp_path):
    y, scores = truth_and_scores(4, 60, {"1": 3.0, "2": 0.1})
    y[:6] = 1
    found = compare_versions(write_log(f"sqlite:///{tmp_path / 'log.sqlite'}", y, scores),
                             NAME, "1", "2")
    assert found.metrics and found.verdict == NO_EVIDENCE
    assert "only 60 of the rows both versions scored have an outcome" in found.why()


def test_rows_only_one_version_scored_are_left_out_and_none_shared_is_an_error(tmp_path):
    y, scores = truth_and_scores(2, 800, {"1": 1.0, "2": 1.0, "3": 1.0})
    engine = write_log(f"sqlite:///{tmp_path / 'log.sqlite'}", y, {"1": scores["1"],
                                                                   "2": scores["2"]})
    with engine.begin() as connection:                # version 3 scored other requests
        connection.execute(insert(predictions), [
            {"logged_at": NOW, "request_id": f"other-{i}", "row_index": 0, "model_name": NAME,
             "model_version": "3", "features": b"\0" * 800, "probability": 0.5, "label": 1,
             "threshold": 0.5, "latency_ms": 1.0} for i in range(10)])
    assert len(shared_rows(engine, NAME, "1", "2")) == 800
    with pytest.raises(DataError, match="versions 1 and 3 of 'xgboost-model' scored no row in "
                                        "common"):
        compare_versions(engine, NAME, "1", "3")
    with pytest.raises(DataError, match="two different versions"):
        compare_versions(engine, NAME, "2", "2")


def test_promote_if_better_promotes_only_on_the_verdict(tmp_path, capsys):
    repo = tmp_path / "deploy"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 200)).astype(np.float32)
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, (X[:, 0] > 1).astype(int))
    for _ in range(3):
        export_version(model, "joblib", 0.5, {"family": "naive_bayes"}, repo)
    offline = ["--repository", str(repo), "--url", "http://127.0.0.1:9"]
    assert main(["promote", "1", *offline]) == 0
    y, scores = truth_and_scores(3, 4_000, {"1": 1.2, "2": 2.5, "3": 0.6})
    write_log(log_url(repo), y, scores).dispose()
    capsys.readouterr()
    assert main(["promote", "2", "--if-better", *offline]) == 1
    said = capsys.readouterr().out
    assert "not promoted (against the default, version 1): A is better" in said
    assert read_default(repo).version == 1
    assert main(["compare", "1", "3", "--repository", str(repo)]) == 0
    report = capsys.readouterr().out
    assert "4,000 rows scored by both, 4,000 with a known outcome" in report
    assert "ROC AUC" in report and "verdict: B is better" in report
    assert main(["promote", "3", "--if-better", *offline]) == 0
    assert read_default(repo).version == 3
    assert main(["compare", "3", "9", "--repository", str(repo)]) == 2
    assert "scored no row in common" in capsys.readouterr().err
