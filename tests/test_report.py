"""BENCHMARKS.md's summary is rebuilt from the sections' own target tables at every write."""

from __future__ import annotations

from bench.report import sections, write_section


def _section(date: str, figure: str, outcome: str) -> str:
    return (f"## Speed\n\nMeasured on 2 cores; {date} 10:00 UTC.\n\n"
            "| target (the server, XGBoost) | measured | |\n| --- | --- | --- |\n"
            f"| answers in ≤ 1 ms | {figure} | {outcome} |\n\nA note.\n")


def test_the_summary_carries_every_target_with_its_latest_figure_and_date(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    write_section(out, "speed", _section("2026-01-01", "2.0 ms", "**missed**"))
    write_section(out, "memory", "## Memory\n\nMeasured on 2 cores; 2026-01-02 11:00 UTC.\n\n"
                  "| target | measured | |\n| --- | --- | --- |\n| ≤ 300 MiB | 250 MiB | met |\n")
    summary = sections(out.read_text())["summary"]
    assert "2 targets, 1 met, 1 missed" in summary
    assert "| speed (XGBoost) | answers in ≤ 1 ms | 2.0 ms | **missed** | 2026-01-01 |" in summary
    assert "| memory | ≤ 300 MiB | 250 MiB | met | 2026-01-02 |" in summary
    write_section(out, "speed", _section("2026-02-01", "0.5 ms", "met"))
    text = out.read_text()
    assert "| speed (XGBoost) | answers in ≤ 1 ms | 0.5 ms | met | 2026-02-01 |" in text
    assert "2.0 ms" not in text and text.index("summary:start") < text.index("speed:start")
