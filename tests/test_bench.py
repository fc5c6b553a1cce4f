"""The benchmark scripts keep working: each runs a smoke version and writes its section."""

from __future__ import annotations

import re

import subprocess
import sys
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.bench


def target_rows(text: str) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) of every row of the sections' target tables, as
    BENCHMARKS.md's summary reads them."""
    rows = report.target_rows(text)
    assert all(len(row) == 4 for row in rows), rows
    return [row[1:] for row in rows]


def _run(module: str, out: Path) -> str:
    done = subprocess.run([sys.executable, "-m", module, "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text()


def test_serving_benchmark_smoke_writes_every_configuration(tmp_path):
    text = _run("bench.serving", tmp_path / "B.md")
    assert "<!-- serving:start -->" in text and "Smoke run" in text
    for label in ("stock MLServer defaults", "plain FastAPI", "this project's deployment",
                  "in-process `inplace_predict`", "gRPC", "bare transports",
                  "64 rows per request", "serving the winner", "in-process winner",
                  "in-process `contributions`", "`pred_contribs`", "bench/sustained.py"):
        assert label in text
    rows = [line for line in text.splitlines()
            if line.startswith("| ") and ("| REST |" in line or "| gRPC |" in line)]
    assert len(rows) == 18
    assert all("| 0 |" in row for row in rows), "a benchmark request failed"
    verdicts = [verdict for _, _, verdict in target_rows(text)]
    # 5 for the XGBoost deployment, 7 for the winner (with its contributions).
    assert len(verdicts) == 12 and set(verdicts) <= {"met", "**missed**"}


def test_sustained_benchmark_smoke_measures_the_log_paired_against_an_aa_control(tmp_path):
    text = _run("bench.sustained", tmp_path / "B.md")
    assert "<!-- sustained:start -->" in text and "Smoke run" in text
    for label in ("every row logged", "A/A: the noise", "logged / stock", "not logged / stock"):
        assert label in text
    assert len(target_rows(text)) == 2
    # The log's rows, from the server's own counters: every logged request's row was written.
    written = re.search(r"([\d,]+) rows written of ([\d,]+) answered, ([\d,]+) dropped", text)
    assert written and int(written[1].replace(",", "")) > 0
    assert written[1] == written[2] and written[3] == "0"


def test_rollout_benchmark_smoke_measures_the_shadow_and_the_front_paired_and_times_compare(
        tmp_path):
    text = _run("bench.rollout", tmp_path / "B.md")
    assert "<!-- rollout:start -->" in text and "Smoke run" in text
    assert len(target_rows(text)) == 2
    # Every answer logged twice, the default's row and the shadow's, none dropped.
    written = re.search(r"([\d,]+) rows written of ([\d,]+) \(default and shadow\), ([\d,]+) "
                        r"dropped", text)
    assert written and int(written[1].replace(",", "")) > 0
    assert written[1] == written[2] and written[3] == "0"
    assert "Compare: B is better" in text
    # The front served the same callers, through nginx, with no errors.
    front = re.search(r"\| no shadow, behind the deploy image's front[^|]*\| ([\d,]+) / [\d.]+ \| "
                      r"(\d+) \|", text)
    assert front and int(front[1].replace(",", "")) > 0 and front[2] == "0"
    assert re.search(r"The front \(deploy/front/.*\): throughput [\d.]+× no front", text)


def test_fast_paths_benchmark_smoke_times_both_paths_on_the_families_selection_trains(tmp_path):
    text = _run("bench.fast_paths", tmp_path / "B.md")
    assert "<!-- fast_paths:start -->" in text and "Smoke run" in text
    assert text.count("| xgboost |") == 3 and text.count("| lightgbm |") == 3
    assert "Verdict: the XGBoost small-batch path" in text


def test_selection_benchmark_smoke_and_sections_are_kept(tmp_path):
    out = tmp_path / "B.md"
    out.write_text("# Benchmarks\n\n<!-- serving:start -->\nkept\n<!-- serving:end -->\n")
    text = _run("bench.selection", out)
    assert "kept" in text and "<!-- selection:start -->" in text
    assert "successive halving" in text and "exhaustive" in text and "peak memory" in text


def test_quality_benchmark_smoke_reports_every_family_against_the_bayes_limit(tmp_path):
    from santander.training.candidates import FAMILIES
    text = _run("bench.quality", tmp_path / "B.md")
    assert "<!-- quality:start -->" in text and "Smoke run" in text
    for generator in ("`santander` generator", "`alternative` generator"):
        assert generator in text
    for family in FAMILIES:
        assert text.count(f"| {family.name} |") + text.count(f"| **{family.name}** (served) |") == 2
    targets = [row for row in target_rows(text) if row[0].startswith("served winner")]
    assert len(targets) == 6    # AUC, F1 and lone-row time, per generator
    assert {verdict for _, _, verdict in targets} <= {"met", "**missed**"}


def test_soak_benchmark_smoke_loses_no_request_while_versions_change(tmp_path):
    text = _run("bench.soak", tmp_path / "B.md")
    assert "<!-- soak:start -->" in text and "Smoke run" in text
    parts = [line for line in text.splitlines() if line[:4] in ("| 1 ", "| 2 ")]
    assert len(parts) == 4                    # two parts with the log on, two with it off
    assert "retired 2" in parts[0] and "promoted 2" in parts[1]
    targets = dict((what, (measured, verdict)) for what, measured, verdict in target_rows(text))
    for way in ("on", "off"):
        failed = targets[f"log {way}: no failed request (valid ones answered, invalid ones a 400)"]
        assert failed[0].startswith("0 of ") and failed[1] == "met"
    counted = next(v for k, v in targets.items() if k.startswith("log on: nothing lost"))
    assert counted[1] == "met", counted
