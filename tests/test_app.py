"""The app (santander/app/): what it gathers and does against a real server, its prediction log
and its repository, and the page's logic under Streamlit's AppTest. Every way a person can
make it fail ends in one line on the page."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from santander.app import data
from santander.app.launch import PAGE
from santander.export import export_version
from santander.layout import models_dir
from santander.ops.launcher import free_port, running_server
from santander.prediction_log.tables import connect
from santander.schema import FEATURES, ID_COLUMN
from santander.training.candidates import get_family

from helpers import truth_and_scores, write_log

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def repository(trained_repository, wide_data, tmp_path_factory):
    """The trained version 1, its report plots where the app looks, and a version 2 of a
    family with no exact explanation (extra_trees)."""
    root, _ = trained_repository
    repo = tmp_path_factory.mktemp("app") / "deploy"
    shutil.copytree(root / "deploy", repo, ignore=shutil.ignore_patterns("predictions.sqlite*"))
    shutil.copytree(root / "reports", repo / "reports")
    X, y = wide_data
    family = get_family("extra_trees")
    model = family.build(max_depth=4, min_samples_leaf=20).fit(X[:2000], y[:2000])
    export_version(model, family.artifact_format, 0.3, {"family": family.name}, repo)
    return repo


@pytest.fixture(scope="module")
def server(repository, tmp_path_factory):
    with running_server(repository, tmp_path_factory.mktemp("app-server")) as running:
        yield running


@pytest.fixture()
def sources(server, repository):
    return data.Sources(server.http_url, repository)


@pytest.fixture()
def page(sources, monkeypatch):
    monkeypatch.setenv(data.SERVER_ENV, sources.server_url)
    monkeypatch.setenv(data.REPOSITORY_ENV, str(sources.repository))
    return AppTest.from_file(str(PAGE), default_timeout=60)


def _model_card_threshold(repository, version: str) -> float:
    settings = json.loads((models_dir(repository) / version / "model-settings.json").read_text())
    return settings["parameters"]["extra"]["threshold"]


def test_scores_come_from_the_server_for_every_chosen_version(sources, repository):
    row = data.sample_row(sources)
    assert list(row.columns) == [ID_COLUMN, *FEATURES] and len(row) == 1
    assert data.served_versions(sources) == ["1", "2"]
    first, second = data.score(sources, row, ["1", "2"], explain=True)
    for result in (first, second):
        probability = result.table["probability"].iloc[0]
        assert 0.0 <= probability <= 1.0
        assert result.threshold == pytest.approx(
            _model_card_threshold(repository, result.version))
        assert result.table["label"].iloc[0] == int(probability >= result.threshold)
        assert result.table[ID_COLUMN].tolist() == row[ID_COLUMN].tolist()
    # Version 1 explains itself: its contributions add up to the logit of its probability.
    logit = np.log(first.table["probability"].iloc[0] / (1 - first.table["probability"].iloc[0]))
    assert first.contributions.shape == (1, len(FEATURES) + 1)
    assert first.contributions[0].sum() == pytest.approx(logit, abs=1e-4)
    top = data.top_contributions(first.contributions)
    assert len(top) == data.TOP_CONTRIBUTIONS
    assert np.all(np.diff(np.abs(top["log-odds"].to_numpy())) <= 0)
    # Version 2 (extra_trees) has none, and says why, but still answers.
    assert second.contributions is None and "extra_trees" in second.note
    assert second.version == "2"


def test_an_uploaded_file_is_checked_and_scored_in_full(sources, small_frame):
    frame = small_frame.head(30)
    rows = data.read_upload("rows.csv", frame.to_csv(index=False).encode())
    assert rows[ID_COLUMN].tolist() == frame[ID_COLUMN].tolist()
    [result] = data.score(sources, rows, ["1"])
    assert len(result.table) == 30 and result.contributions is None


@pytest.mark.parametrize("name, content, message", [
    ("rows.txt", b"var_0\n1\n", "upload a .csv or .parquet"),
    ("rows.csv", b"var_0,var_1\n1,2\n", "rows.csv: missing 198 feature column"),
    ("rows.csv", ("ID_code," + ",".join(FEATURES) + "\nx," + ",".join(["1"] * 199)
                  + ",oops\n").encode(), "rows.csv: column 'var_199' row 1: non-numeric"),
    ("rows.parquet", b"not parquet at all", "rows.parquet: "),
    ("rows.csv", ("ID_code," + ",".join(FEATURES) + "\n").encode(), "rows.csv: .*no data rows"),
])
def test_a_bad_upload_is_one_line_naming_the_file(name, content, message):
    with pytest.raises(data.AppError, match=message) as caught:
        data.read_upload(name, content)
    assert "\n" not in str(caught.value) and "/tmp" not in str(caught.value)


def test_a_server_that_is_down_or_a_version_that_is_gone_is_one_line(sources):
    down = data.Sources(f"http://127.0.0.1:{free_port()}", sources.repository)
    with pytest.raises(data.AppError, match="cannot"):
        data.served_versions(down)
    with pytest.raises(data.AppError, match="HTTP 404"):
        data.score(sources, data.sample_row(sources), ["9"])


def test_retiring_and_promoting_change_what_the_server_serves(sources):
    assert "retired version 2; the server now serves 1" in data.change_state(sources, 2, "retire")
    table, answered = data.versions_table(sources)
    assert answered
    assert table.set_index("version")["state"].to_dict() == {1: "serving", 2: "retired"}
    assert table.set_index("version")["default"].to_dict() == {1: True, 2: False}
    assert "version 2 is the default; the server now serves 1, 2" in data.change_state(
        sources, 2, "promote")
    assert data.versions_table(sources)[0].set_index("version")["default"].to_dict() == \
        {1: False, 2: True}
    data.change_state(sources, 1, "promote")         # the default back to 1: 2 can be retired
    with pytest.raises(data.AppError, match="version 7"):
        data.change_state(sources, 7, "promote")
    assert [p.name for p in data.report_plots(sources, 1)] == sorted(
        ["roc.png", "precision_recall.png", "f1_vs_threshold.png", "cv_comparison.png"])


def _wait_for_logged(sources, timeout: float = 15.0):
    """The positive rate, once the server's writer has committed something (it batches)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return data.positive_rate(sources)
        except data.AppError:
            assert time.monotonic() < deadline, "the server never logged a row"
            time.sleep(0.2)


def _score_and_label(sources, repository, folder):
    """Score the sample row on version 1, wait for the log to hold it, label it positive."""
    from santander.monitoring.outcomes import read_labels, record_outcomes
    rows = data.sample_row(sources)
    data.score(sources, rows, ["1"])
    rate = _wait_for_logged(sources)
    labels = folder / "labels.csv"
    labels.write_text(f"ID_code,target\n{rows[ID_COLUMN].iloc[0]},1\n")
    engine = connect(f"sqlite:///{repository / 'predictions.sqlite'}")
    record_outcomes(engine, read_labels(labels), str(labels))
    engine.dispose()
    return rate


def _write_drift_summary(repository, stamp: str, drifted: int) -> None:
    """What `santander monitor` writes (its own test runs it), with made-up figures."""
    reports = repository / "reports"
    summary = {"version": "1", "at": stamp, "columns": 201, "drifted_columns": drifted,
               "drifted_share": drifted / 201, "threshold": 0.5, "current_rows": 400,
               "drifted": drifted / 201 > 0.5}
    (reports / f"monitor-{stamp}.json").write_text(json.dumps(summary))
    (reports / f"monitor-{stamp}.html").write_text("<html></html>")


def test_monitoring_reads_the_log_the_outcomes_and_the_latest_drift_verdict(
        sources, repository, tmp_path):
    rate = _score_and_label(sources, repository, tmp_path)
    assert "1" in rate.columns and rate["1"].dropna().between(0, 1).all()
    # The row's ID_code labels every logged row with that code (other tests scored it too).
    live = data.live_table(sources).set_index("version")
    assert live.loc["1", "rows"] >= 1
    assert (live["positives"] == live["rows"]).all()

    assert data.latest_drift(sources) is None
    # The newest summary is the verdict.
    _write_drift_summary(repository, "20261122T100000Z", 10)
    _write_drift_summary(repository, "20261123T100000Z", 150)
    reports = repository / "reports"
    verdict = data.latest_drift(sources)
    assert verdict.drifted and "150 of 201 columns drifted" in verdict.line
    assert verdict.html_path.name == "monitor-20261123T100000Z.html"
    (reports / "monitor-20261124T100000Z.json").write_text("{not json")
    with pytest.raises(data.AppError, match="unreadable drift summary"):
        data.latest_drift(sources)
    (reports / "monitor-20261124T100000Z.json").unlink()


# The page, under Streamlit's AppTest ----------------------------------------------------------

def _shown_probability(page) -> str:
    assert not page.exception, page.exception
    assert not page.error, [e.value for e in page.error]
    [metric] = page.metric
    return metric.value


def _elements(page, kind: str) -> list:
    """Every element of a kind on the page, nested blocks included (AppTest has no
    accessor for some, images among them)."""
    found, blocks = [], [page._tree]
    while blocks:
        node = blocks.pop()
        for child in getattr(node, "children", {}).values():
            if type(child).__name__ == kind:
                found.append(child)
            blocks.append(child)
    return found


def _button(page, label: str):
    [button] = [b for b in page.button if b.label == label]
    return button


def test_the_page_scores_the_prefilled_row_and_an_edited_one_as_the_server_does(page, sources):
    page.run()
    row = data.sample_row(sources)
    assert page.text_input(key="id_code").value == row[ID_COLUMN].iloc[0]
    assert page.number_input(key="var_7").value == pytest.approx(row["var_7"].iloc[0])
    assert page.multiselect(key="versions").value == data.served_versions(sources)[-1:]
    page.multiselect(key="versions").set_value(["2"]).run()
    _button(page, "Score").click().run()
    [expected] = data.score(sources, row, ["2"])
    assert _shown_probability(page) == f"{expected.table['probability'].iloc[0]:.4f}"
    assert "extra_trees" in page.info[0].value          # no contributions from this family

    page.multiselect(key="versions").set_value(["1"]).run()
    # A form's edits count when it is submitted, in the same run.
    page.number_input(key="var_81").set_value(row["var_81"].iloc[0] + 10.0)
    _button(page, "Score").click().run()
    edited = row.copy()
    edited["var_81"] += 10.0
    [expected] = data.score(sources, edited, ["1"])
    assert _shown_probability(page) == f"{expected.table['probability'].iloc[0]:.4f}"
    assert page.get("vega_lite_chart")                      # the contributions chart


def test_the_page_says_in_one_line_that_the_server_is_down(page, monkeypatch):
    monkeypatch.setenv(data.SERVER_ENV, f"http://127.0.0.1:{free_port()}")
    page.run()
    assert not page.exception
    [error] = page.error
    assert "cannot" in error.value and "\n" not in error.value


def test_the_page_says_in_one_line_that_a_picked_version_is_gone(page, sources):
    page.run()
    page.multiselect(key="versions").set_value(["2"]).run()
    data.change_state(sources, 2, "retire")              # gone behind the page's back
    try:
        _button(page, "Score").click().run()
        assert not page.exception
        assert [e.value for e in page.error] == [
            f"version 2 is no longer served by {sources.server_url}; pick another"]
        assert not page.metric                           # nothing scored
    finally:
        data.change_state(sources, 2, "promote")
        data.change_state(sources, 1, "promote")     # the default back to 1: 2 can be retired


def test_the_versions_page_retires_and_promotes_after_confirmation(page, sources):
    page.run()
    page.sidebar.radio(key="page").set_value("Versions").run()
    assert not page.exception and not page.error
    assert len(page.dataframe) == 1
    page.selectbox(key="version").set_value(1).run()
    assert len(_elements(page, "Image")) == 4              # version 1's report plots
    page.selectbox(key="version").set_value(2).run()
    assert "No report plots for version 2" in page.info[0].value
    _button(page, "Retire").click().run()
    assert data.served_versions(sources) == ["1", "2"]     # nothing happens before "yes"
    _button(page, "Yes, retire version 2").click().run()
    assert "retired version 2" in page.success[0].value
    assert data.served_versions(sources) == ["1"]
    _button(page, "Promote").click().run()
    _button(page, "Cancel").click().run()
    assert data.served_versions(sources) == ["1"]
    _button(page, "Promote").click().run()
    _button(page, "Yes, promote version 2").click().run()
    assert data.served_versions(sources) == ["1", "2"]


def test_the_monitoring_page_shows_what_the_log_holds(page, sources, repository, tmp_path):
    _score_and_label(sources, repository, tmp_path)
    _write_drift_summary(repository, "20261125T100000Z", 12)
    page.run()
    page.sidebar.radio(key="page").set_value("Monitoring").run()
    assert not page.exception and not page.error
    assert [h.value for h in page.subheader] == [
        "Live metrics (rows with a recorded outcome)", "Positive-prediction rate over time",
        "Two versions on the same rows", "Drift"]
    live = page.dataframe[0].value
    assert "1" in live["version"].tolist() and {"precision", "recall", "f1"} <= set(live)
    assert page.get("vega_lite_chart")                      # the rate over time
    assert any("12 of 201 columns drifted" in s.value for s in page.success)
    assert [b.label for b in _elements(page, "DownloadButton")] == ["Open the HTML report"]
    _write_drift_summary(repository, "20261126T100000Z", 150)
    page.run()
    assert "150 of 201 columns drifted" in page.error[0].value and "DRIFT" in page.error[0].value


def test_the_monitoring_page_compares_two_versions_on_the_rows_both_scored(page, repository):
    y, scores = truth_and_scores(0, 2_000, {"1": 2.0, "2": 0.8})
    write_log(f"sqlite:///{repository / 'predictions.sqlite'}", y, scores).dispose()
    page.run()
    page.sidebar.radio(key="page").set_value("Monitoring").run()
    page.selectbox(key="compare_a").set_value("1").run()
    page.selectbox(key="compare_b").set_value("2").run()
    assert not page.exception
    assert all("drifted" in e.value for e in page.error)       # an earlier test's drift report
    [table] = [d.value for d in page.dataframe if "metric" in d.value]
    assert table["metric"].tolist() == ["f1", "precision", "recall", "roc_auc"]
    assert (table["95% low"] < table["B - A"]).all() and (table["B - A"] < table["95% high"]).all()
    assert any(s.value.startswith("B is better: F1") for s in page.success)
