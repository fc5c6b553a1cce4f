"""Selection: threshold tuning, stratified subsamples, halving, ranking, Dask."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from sklearn.model_selection import StratifiedKFold

from santander.training.candidates import FAMILIES, get_family
from santander.config import N_FOLDS, SEED
from santander.training.selection import nested_order, select, tune_threshold
from santander.training.train import holdout_split, load_dataset


def test_tuned_threshold_maximises_f1_over_every_cut():
    rng = np.random.default_rng(0)
    y = (rng.random(2_000) < 0.1).astype(int)
    proba = np.clip(rng.normal(0.2 + 0.3 * y, 0.15), 0, 1)
    threshold, best = tune_threshold(y, proba)
    brute = max(f1_score(y, proba >= t) for t in np.unique(proba))
    assert best == pytest.approx(brute)
    assert f1_score(y, proba >= threshold) == pytest.approx(best)
    assert best > f1_score(y, proba >= 0.5)


def test_every_prefix_of_the_nested_order_keeps_the_class_balance():
    y = np.array([1] * 100 + [0] * 900)
    order = nested_order(y, seed=1)
    assert sorted(order) == list(range(1000))
    for n in (50, 111, 333, 1000):
        assert abs(y[order[:n]].mean() - 0.1) <= 1 / n + 1e-9


def test_at_least_six_families_of_rising_complexity():
    names = [f.name for f in FAMILIES]
    assert {"logistic", "naive_bayes", "histogram_nb", "additive", "extra_trees", "xgboost",
            "lightgbm"} <= set(names)
    assert len({f.complexity for f in FAMILIES}) >= 3
    for family in FAMILIES:
        assert family.configurations() and family.configurations(quick=True)
        family.build(**family.configurations(quick=True)[0])


@pytest.fixture(scope="module")
def split(small_parquet):
    return holdout_split(load_dataset(small_parquet, quick=True))


def test_holdout_split_is_stratified_80_20(split):
    n = len(split.y_train) + len(split.y_holdout)
    assert len(split.y_holdout) == pytest.approx(0.2 * n, abs=1)
    assert split.y_train.mean() == pytest.approx(split.y_holdout.mean(), abs=0.005)


def test_select_ranks_every_family_by_tuned_f1(split):
    result = select(split.X_train, split.y_train, quick=True, progress=False)
    assert {r.family for r in result.ranking} == {f.name for f in FAMILIES}
    f1s = [r.f1 for r in result.ranking]
    assert f1s == sorted(f1s, reverse=True)
    for r in result.ranking:
        assert len(r.fold_f1) == len(r.fold_roc_auc) == len(r.fold_pr_auc) == 5
        assert 0 < r.threshold < 1 and r.fit_seconds > 0
        assert r.rows == len(split.y_train)
        assert r.params in get_family(r.family).configurations(quick=True)
        # The threshold is the one that maximises F1 on the pooled out-of-fold predictions.
        assert r.threshold == pytest.approx(tune_threshold(split.y_train, r.oof_proba)[0])
    # Families with several configurations were halved: their survivor saw all rows last.
    halved = next(r for r in result.ranking if r.family == "logistic")
    assert [h["rows"] for h in halved.halving] == sorted(h["rows"] for h in halved.halving)
    assert halved.halving[0]["rows"] < halved.halving[-1]["rows"] == len(split.y_train)
    # Naive Bayes fits the generator's model (independent features given class): it must
    # beat chance clearly.
    nb = next(r for r in result.ranking if r.family == "naive_bayes")
    assert np.mean(nb.fold_roc_auc) > 0.6


def test_each_fold_f1_is_scored_at_a_threshold_tuned_on_the_other_folds(split):
    y = split.y_train
    [result] = select(split.X_train, y, [get_family("naive_bayes")], quick=True,
                      progress=False).ranking
    folds = StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED).split(y, y)
    pooled = []
    for (others, valid), fold_f1 in zip(folds, result.fold_f1):
        threshold, _ = tune_threshold(y[others], result.oof_proba[others])
        assert fold_f1 == pytest.approx(f1_score(y[valid], result.oof_proba[valid] >= threshold))
        pooled.append(f1_score(y[valid], result.oof_proba[valid] >= result.threshold))
    # Tuning on the scored rows themselves would flatter the mean.
    assert np.mean(pooled) >= result.f1


def test_selection_runs_on_a_dask_cluster(split):
    import distributed
    families = [get_family("logistic"), get_family("naive_bayes")]
    local = select(split.X_train, split.y_train, families, quick=True, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        remote = select(split.X_train, split.y_train, families, quick=True, progress=False,
                        dask_scheduler=cluster.scheduler_address)
    for a, b in zip(local.ranking, remote.ranking):
        assert a.family == b.family
        np.testing.assert_allclose(a.fold_f1, b.fold_f1)
        assert a.threshold == pytest.approx(b.threshold)


def test_the_race_projection_continues_the_learning_curve_with_a_margin():
    from santander.config import RACE_CURVE_DECAY, RACE_STANDARD_ERRORS
    from santander.training.selection import CandidateResult, race_projection

    def rung(fold_f1):
        return CandidateResult("xgboost", {}, 0.5, fold_f1, [0.8] * 5, [0.4] * 5, 1.0, 100)
    small, large = rung([0.40, 0.42, 0.44, 0.46, 0.48]), rung([0.50] * 5)
    # 0.50 + decay * (0.50 - 0.44), plus the margin: the small rung's spread alone, here.
    error = RACE_CURVE_DECAY * np.std([0.40, 0.42, 0.44, 0.46, 0.48], ddof=1) / np.sqrt(5)
    assert race_projection(small, large) == pytest.approx(
        0.50 + RACE_CURVE_DECAY * 0.06 + RACE_STANDARD_ERRORS * error)


def test_a_slow_family_that_cannot_win_is_raced_out_on_a_third_of_the_rows():
    from santander.training.data.synthetic import generate
    frame = generate(6_000, seed=11)          # a rung at 1/9 needs 500 rows
    X, y = frame.filter(like="var_").to_numpy(np.float32), frame["target"].to_numpy()
    families = [get_family("naive_bayes"), get_family("extra_trees")]
    ranking = select(X, y, families, quick=True, progress=False, race=True).ranking
    [full], [raced] = ranking[:1], ranking[1:]
    assert full.family == "naive_bayes" and full.rows == len(y) and full.race is None
    # Scored on 1/9 and 1/3 of the rows, never on all of them.
    assert [h["rows"] for h in raced.halving] == [len(y) // 9, len(y) // 3] == [
        len(y) // 9, raced.rows]
    assert raced.race["projected_f1"] < raced.race["best_f1"] == full.f1
    assert raced.summary()["raced_out"] == raced.race


def test_nothing_races_in_quick_mode_or_against_no_other_family(small_frame):
    X = small_frame.filter(like="var_").to_numpy(np.float32)[:1_500]
    y = small_frame["target"].to_numpy()[:1_500]
    assert all(r.rows == len(y) and r.race is None for r in select(
        X, y, [get_family("naive_bayes"), get_family("extra_trees")], quick=True,
        progress=False).ranking)
    [alone] = select(X, y, [get_family("extra_trees")], quick=True, progress=False,
                     race=True).ranking
    assert alone.rows == len(y) and alone.race is None
