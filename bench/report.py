"""BENCHMARKS.md: each benchmark script owns one marked section and rewrites only that."""

from __future__ import annotations

import argparse
import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

from santander.atomic import staged_file

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def parser(doc: str, smoke_help: str) -> argparse.ArgumentParser:
    """A benchmark script's command line: its docstring, `--smoke` and `--out`."""
    cli = argparse.ArgumentParser(description=doc,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--smoke", action="store_true", help=smoke_help)
    cli.add_argument("--out", default=str(BENCHMARKS))
    return cli


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")


SUMMARY = "summary"
MEASURED_AT = re.compile(r"^Measured on .*; (\d{4}-\d{2}-\d{2}) \d{2}:\d{2} UTC\.", re.M)


def _replace_section(current: str, name: str, text: str, first: bool = False) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        return before + block + rest.split(end, 1)[1]
    if first:       # after the title and its paragraph
        head, _, rest = current.partition("\n\n")
        intro, _, rest = rest.partition("\n\n")
        return f"{head}\n\n{intro}\n\n{block}\n\n{rest}"
    return current.rstrip() + "\n\n" + block + "\n"


def sections(text: str) -> dict[str, str]:
    """Every marked section's text, by name, in file order."""
    return {name: body for name, body in re.findall(
        r"<!-- (\w+):start -->\n(.*?)\n<!-- \1:end -->", text, re.S)}


def target_rows(body: str) -> list[tuple[str, str, str, str]]:
    """(subject, target, measured, verdict) of every row of the target tables in `body`
    (header `| target [(subject)] | measured | |`); the subject is the last part of the
    header's parenthesis ("target (this project's deployment, XGBoost)": "XGBoost")."""
    rows, subject = [], None
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| target") and cells[1:2] == ["measured"]:
            found = re.search(r"\(([^()]*)\)\s*$", cells[0])
            subject = found.group(1).split(", ")[-1] if found else ""
        elif subject is not None and line.startswith("|") and not set(line) <= set("|- "):
            rows.append((subject, *cells))
        elif not line.startswith("|"):
            subject = None
    return rows


def summary(text: str) -> str:
    """One screen: every target of every section, its latest figure, met or missed, and the
    date of the run that measured it; built from the sections' own target tables."""
    rows = []
    for name, body in sections(text).items():
        if name == SUMMARY:
            continue
        date = MEASURED_AT.search(body)
        for subject, target, measured, outcome in target_rows(body):
            label = f"{name} ({subject})" if subject else name
            rows.append((label, target, measured, outcome, date.group(1) if date else "-"))
    missed = sum("missed" in row[3] for row in rows)
    return "\n".join([
        "## Summary", "",
        f"{len(rows)} targets, {len(rows) - missed} met, {missed} missed. Each row is copied "
        "from its section's target table below, by the script that wrote that section.", "",
        "| section | target | latest figure | | measured on |",
        "| --- | --- | --- | --- | --- |", *("| " + " | ".join(row) + " |" for row in rows)])


def write_section(path: str | Path, name: str, text: str) -> Path:
    """Replace the `name` section of the file (or add it), and the summary, atomically."""
    path = Path(path)
    current = path.read_text() if path.exists() else (
        "# Benchmarks\n\nWritten by the scripts under `bench/` (see the README); "
        "each section is replaced by the script that owns it.\n")
    updated = _replace_section(current, name, text)
    updated = _replace_section(updated, SUMMARY, summary(updated), first=True)
    with staged_file(path) as staging:
        staging.write_text(updated)
    return path


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"
