"""The Streamlit page: Score, Versions and Monitoring, laid out over santander/app/data.py.

Started by `santander app` (streamlit run on this file); where it looks comes from the
environment (data.SERVER_ENV, data.REPOSITORY_ENV). Nothing here may show a traceback: an
AppError is one line; anything else is one line naming its type.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from santander.app import data
from santander.schema import FEATURES, ID_COLUMN

PAGES = ("Score", "Versions", "Monitoring")
FORM_COLUMNS = 4


def score_page(sources: data.Sources) -> None:
    st.header("Score")
    versions = data.served_versions(sources)
    # A version picked on an earlier run may have gone since (retired, or the server restarted).
    gone = [v for v in st.session_state.get("versions", []) if v not in versions]
    if gone:
        st.error(f"version {', '.join(gone)} is no longer served by {sources.server_url}; "
                 "pick another")
    chosen = st.multiselect("Versions (several to compare)", versions, default=versions[-1:],
                            key="versions")
    if gone and not chosen:
        return
    explain = st.checkbox("Show the top contributions (when the version explains itself)",
                          value=True, key="explain")
    source = st.radio("Rows", ["One row", "Upload a file"], horizontal=True, key="source")
    if source == "One row":
        rows = _row_form(sources)
    else:
        rows = _uploaded_rows()
    if rows is None:
        return
    results = data.score(sources, rows, chosen, explain)
    _show_scores(results, rows)


def _row_form(sources: data.Sources):
    sample = data.sample_row(sources)
    with st.form("row"):
        code = st.text_input(ID_COLUMN, value=str(sample[ID_COLUMN].iloc[0]), key="id_code")
        with st.expander("The 200 features (prefilled from a training row; edit any)"):
            columns = st.columns(FORM_COLUMNS)
            values = [columns[j % FORM_COLUMNS].number_input(
                feature, value=float(sample[feature].iloc[0]), format="%.4f", key=feature)
                for j, feature in enumerate(FEATURES)]
        if not st.form_submit_button("Score", type="primary"):
            return None
    return pd.DataFrame([[code, *values]], columns=[ID_COLUMN, *FEATURES])


def _uploaded_rows():
    upload = st.file_uploader("CSV or parquet with var_0..var_199 (ID_code optional)",
                              type=["csv", "parquet"], key="upload")
    if upload is None:
        return None
    rows = data.read_upload(upload.name, upload.getvalue())
    st.caption(f"{upload.name}: {len(rows):,} row(s)")
    if not st.button("Score", type="primary", key="score_upload"):
        return None
    return rows


def _show_scores(results: list[data.Scores], rows) -> None:
    if len(rows) == 1:
        cells = st.columns(len(results))
        for cell, result in zip(cells, results):
            probability = float(result.table["probability"].iloc[0])
            label = int(result.table["label"].iloc[0])
            cell.metric(f"Version {result.version}: probability", f"{probability:.4f}")
            cell.markdown(f"label **{label}** (threshold {_number(result.threshold)})")
    summary = pd.DataFrame({
        "version": [r.version for r in results],
        "threshold": [_number(r.threshold) for r in results],
        "rows": [len(r.table) for r in results],
        "positive": [int(r.table["label"].sum()) for r in results]})
    st.table(summary.set_index("version"))
    for result in results:
        if len(rows) > 1:
            st.subheader(f"Version {result.version}")
            st.dataframe(result.table, hide_index=True)
            st.download_button(f"Download version {result.version}'s answers (CSV)",
                               data.as_csv(result.table), f"scores-v{result.version}.csv",
                               key=f"download-{result.version}")
        if result.contributions is not None:
            top = data.top_contributions(result.contributions)
            st.markdown(f"**Version {result.version}: the first row's top "
                        f"{len(top)} contributions** (log-odds; positive pushes towards 1)")
            st.bar_chart(top.set_index("feature"), horizontal=True, sort=False)  # by size
        elif result.note:
            st.info(f"Version {result.version}: no contributions ({result.note})")


def versions_page(sources: data.Sources) -> None:
    st.header("Versions")
    table, answered = data.versions_table(sources)
    if table.empty:
        st.info(f"No versions in {sources.repository}: train one (santander train).")
        return
    if not answered:
        st.warning(f"No server at {sources.server_url}: 'active' versions are served when it "
                   "starts.")
    st.dataframe(table, hide_index=True)
    numbers = table["version"].tolist()
    version = st.selectbox("Version", numbers, index=len(numbers) - 1, key="version")
    promote, retire = st.columns(2)
    if promote.button("Promote", key="promote"):
        st.session_state["pending"] = ("promote", version)
    if retire.button("Retire", key="retire"):
        st.session_state["pending"] = ("retire", version)
    pending = st.session_state.get("pending")
    if pending:
        action, number = pending
        st.warning(f"{action.capitalize()} version {number}?")
        yes, no = st.columns(2)
        if yes.button(f"Yes, {action} version {number}", key="confirm"):
            st.session_state.pop("pending")
            st.success(data.change_state(sources, number, action))
        elif no.button("Cancel", key="cancel"):
            st.session_state.pop("pending")
            st.rerun()
    plots = data.report_plots(sources, version)
    st.subheader(f"Version {version}'s report")
    if not plots:
        st.info(f"No report plots for version {version}.")
    for left, right in zip(plots[::2], [*plots[1::2], None]):
        cells = st.columns(2)
        cells[0].image(str(left), caption=left.stem.replace("_", " "))
        if right is not None:
            cells[1].image(str(right), caption=right.stem.replace("_", " "))


def monitoring_page(sources: data.Sources) -> None:
    st.header("Monitoring")
    st.subheader("Live metrics (rows with a recorded outcome)")
    try:
        live = data.live_table(sources)
        if live.empty:
            st.info("No outcomes joined yet: santander outcomes --data labels.csv")
        else:
            st.dataframe(live, hide_index=True)
        st.subheader("Positive-prediction rate over time")
        st.line_chart(data.positive_rate(sources))
    except data.AppError as exc:
        st.info(str(exc))
    _comparison(sources)
    st.subheader("Drift")
    verdict = data.latest_drift(sources)
    if verdict is None:
        st.info("No drift report yet: santander monitor")
        return
    (st.error if verdict.drifted else st.success)(verdict.line)
    if verdict.html_path is not None:
        st.download_button("Open the HTML report", verdict.html_path.read_bytes(),
                           verdict.html_path.name, mime="text/html", key="drift_html")
        st.caption(str(verdict.html_path))


def _comparison(sources: data.Sources) -> None:
    st.subheader("Two versions on the same rows")
    try:
        logged = data.logged_versions(sources)
    except data.AppError as exc:
        st.info(str(exc))
        return
    if len(logged) < 2:
        st.info("One version logged so far: have another score the default's requests "
                "(santander shadow N), then compare them here.")
        return
    left, right = st.columns(2)
    a = left.selectbox("A (usually the default)", logged, index=len(logged) - 2, key="compare_a")
    b = right.selectbox("B (usually the shadow)", logged, index=len(logged) - 1, key="compare_b")
    if a == b:
        st.info("Pick two different versions.")
        return
    try:
        found = data.compare(sources, a, b)
    except data.AppError as exc:
        st.info(str(exc))
        return
    st.caption(found.summary)
    if not found.table.empty:
        st.dataframe(found.table, hide_index=True)
    (st.success if found.verdict.startswith("B is better") else st.info)(found.verdict)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def main() -> None:
    st.set_page_config(page_title="Santander transaction classifier", layout="wide")
    sources = data.Sources.from_environment()
    page = st.sidebar.radio("Page", PAGES, key="page")
    st.sidebar.caption(f"Server {sources.server_url}  \nRepository {sources.repository}")
    try:
        {"Score": score_page, "Versions": versions_page, "Monitoring": monitoring_page}[page](
            sources)
    except data.AppError as exc:
        st.error(str(exc))
    except Exception as exc:  # noqa: BLE001 - the page says what broke, never a traceback
        st.error(f"{type(exc).__name__}: {exc}")


main()
