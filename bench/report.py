"""BENCHMARKS.md: each benchmark script owns one marked section and rewrites only that."""

from __future__ import annotations

import argparse
import os
import platform
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


def write_section(path: str | Path, name: str, text: str) -> Path:
    """Replace the `name` section of the file (or add it), atomically."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    current = path.read_text() if path.exists() else (
        "# Benchmarks\n\nWritten by the scripts under `bench/` (see the README); "
        "each section is replaced by the script that owns it.\n")
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
        updated = before + block + after
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    with staged_file(path) as staging:
        staging.write_text(updated)
    return path


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"
