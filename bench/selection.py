"""Selection benchmark: the default full run's time and peak memory, and successive halving
checked against an exhaustive search over the same space. Written to BENCHMARKS.md.

    python -m bench.selection                    # full: 200,000 rows (~5 minutes on 2 cores)
    python -m bench.selection --smoke --out /tmp/B.md
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.report import parser as cli, machine, verdict, write_section



class PeakMemory:
    """Peak PSS of this process and its children (the joblib workers), sampled."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak_mib = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        import psutil
        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total / 2**20

    def _run(self):
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def full_run(rows: int, quick: bool, folder: Path) -> dict:
    """`train` as the README runs it, on generated data; wall time and peak memory."""
    from santander.training.data.io import write_frame
    from santander.training.data.synthetic import generate
    from santander.training.train import RunOptions, run
    data = write_frame(generate(rows, seed=42), folder / "train.parquet")
    # Tracked as users' runs are, into a store of its own (timed, but not in their mlruns/).
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    with PeakMemory() as memory:
        start = time.perf_counter()
        outcome = run(data, RunOptions(quick=quick, repository=folder / "deploy",
                                       reports_dir=folder / "reports", progress=False))
        seconds = time.perf_counter() - start
    card = outcome.report["model_card"]
    return {"rows": rows, "seconds": seconds, "peak_mib": memory.peak_mib,
            "timings": outcome.report["timings_seconds"], "winner": card["family"],
            "holdout_f1": card["holdout"]["f1"],
            "fits": sum(len(c["halving"]) for c in outcome.report["candidates"]),
            "candidates": outcome.report["candidates"]}


def halving_vs_exhaustive(rows: int, quick: bool) -> dict:
    """The same space searched both ways on one subsample; winners scored on one holdout."""
    from santander.training.candidates import FAMILIES
    from santander.training.data.io import Dataset, fingerprint
    from santander.training.data.synthetic import generate
    from santander.training.selection import SelectionResult, select
    from santander.training.train import holdout_split, refit_winner
    frame = generate(rows, seed=7)
    X = frame.filter(like="var_").to_numpy(np.float32)
    y = frame["target"].to_numpy()
    split = holdout_split(Dataset(X, y, frame["ID_code"].to_numpy(), fingerprint(X, y), "bench"))

    start = time.perf_counter()
    halving = select(split.X_train, split.y_train, FAMILIES, quick=quick, progress=False)
    halving_seconds = time.perf_counter() - start

    start = time.perf_counter()
    every = []
    for family in FAMILIES:
        for params in family.configurations(quick):
            fixed = {k: [v] for k, v in params.items()}
            one = dataclasses.replace(family, space=fixed, quick_space=fixed)
            every.append(select(split.X_train, split.y_train, [one], quick=quick,
                                progress=False).winner)
    exhaustive_seconds = time.perf_counter() - start
    complexity = {f.name: f.complexity for f in FAMILIES}
    exhaustive = SelectionResult(sorted(every, key=lambda r: (-r.f1, complexity[r.family])))

    scores = {}
    for label, result in (("halving", halving), ("exhaustive", exhaustive)):
        refit = refit_winner(result, split)
        scores[label] = {"family": result.winner.family, "params": result.winner.params,
                         "cv_f1": result.winner.f1, "holdout_f1": refit.holdout["f1"]}
    scores["halving"]["seconds"] = halving_seconds
    scores["exhaustive"]["seconds"] = exhaustive_seconds
    scores["configurations"] = len(every)
    scores["rows"] = rows
    scores["gap"] = abs(scores["halving"]["holdout_f1"] - scores["exhaustive"]["holdout_f1"])
    return scores


def render(full: dict, comparison: dict, smoke: bool) -> str:
    minutes, peak_gib = full["seconds"] / 60, full["peak_mib"] / 1024
    h, e = comparison["halving"], comparison["exhaustive"]
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in full["timings"].items())
    return "\n".join([
        "## Selection", "",
        f"Measured on {machine()}." + (" **Smoke run (tiny data, quick spaces): figures are "
                                       "not meaningful.**" if smoke else ""),
        "`python -m bench.selection` reproduces it.", "",
        f"Default full run (`train`: {full['rows']:,} rows, every family, 5 folds, "
        f"holdout, export): **{minutes:.1f} min** ({timings}); peak memory "
        f"**{peak_gib:.2f} GiB** PSS (this process and its joblib workers). Winner: "
        f"{full['winner']}, holdout F1 {full['holdout_f1']:.4f}.", "",
        "Each family's rungs in that run (rows: CV F1 of the configuration that went on); "
        "the slow families race on 1/9 and 1/3 of the rows, and run on all of them only if "
        "their projected F1 (with its margin) reaches the best full run's:", "",
        "| family | rungs | raced out |", "| --- | --- | --- |",
        *(f"| {c['family']} | " + ", ".join(
            f"{h['rows']:,}: {h['f1']:.4f}" for h in c["halving"] if h["params"] == c["params"])
          + " | " + (f"projected {c['raced_out']['projected_f1']:.4f} < best "
                     f"{c['raced_out']['best_f1']:.4f}" if c.get("raced_out") else "no") + " |"
          for c in full["candidates"]), "",
        f"Successive halving (and the race) against an exhaustive search over the same space, on "
        f"{comparison['rows']:,} rows ({comparison['configurations']} configurations, each "
        "with full 5-fold CV in the exhaustive search); both winners refitted and scored on "
        "the same holdout:", "",
        "| search | winner | CV F1 | holdout F1 | time |", "| --- | --- | --- | --- | --- |",
        f"| successive halving | {h['family']} {h['params']} | {h['cv_f1']:.4f} | "
        f"{h['holdout_f1']:.4f} | {h['seconds']:.0f} s |",
        f"| exhaustive | {e['family']} {e['params']} | {e['cv_f1']:.4f} | "
        f"{e['holdout_f1']:.4f} | {e['seconds']:.0f} s |", "",
        "| target | measured | |", "| --- | --- | --- |",
        f"| default full run ≤ 10 minutes | {minutes:.1f} min | {verdict(minutes <= 10)} |",
        f"| peak memory ≤ 3 GiB | {peak_gib:.2f} GiB | {verdict(peak_gib <= 3)} |",
        f"| halving winner's holdout F1 within 0.005 of exhaustive | "
        f"{comparison['gap']:.4f} | {verdict(comparison['gap'] <= 0.005)} |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = cli(__doc__, "tiny data and quick spaces")
    parser.add_argument("--rows", type=int, default=None, help="full run rows (200,000)")
    parser.add_argument("--compare-rows", type=int, default=None,
                        help="rows for halving vs exhaustive (30,000)")
    args = parser.parse_args(argv)
    rows = args.rows or (3_000 if args.smoke else 200_000)
    compare_rows = args.compare_rows or (2_000 if args.smoke else 30_000)
    with tempfile.TemporaryDirectory(prefix="santander-bench-") as tmp:
        full = full_run(rows, args.smoke, Path(tmp))
    print(json.dumps(full, indent=2, default=str), flush=True)
    comparison = halving_vs_exhaustive(compare_rows, args.smoke)
    print(json.dumps(comparison, indent=2, default=str), flush=True)
    write_section(args.out, "selection", render(full, comparison, args.smoke))
    return 0


if __name__ == "__main__":
    sys.exit(main())
