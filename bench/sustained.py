"""Sustained load: what the prediction log costs, and the deployment against stock MLServer,
at 64 concurrent REST callers in phases long enough for the log to reach its steady state.

    python -m bench.sustained                 # full run (~10 minutes on 2 cores)
    python -m bench.sustained --smoke --out /tmp/B.md    # short phases: keeps the script working

Two servers, both pinned to core 0 (the load generator, `wrk`, to core 1), the same XGBoost
model in each (400 trees, depth 4, 200 features), one row per request:
* this project's deployment, holding the model three times: version 1 with every row logged to
  the SQLite prediction log (as shipped), versions 2 and 3 not logged (`log_sample_rate` 0);
* stock MLServer with its xgboost runtime and `httptools`, as `bench/serving.py` runs it.

Each round visits version 1, 2, 3 and stock, one phase each, the order turning with the round.
Short bursts hide the log's cost: the queue absorbs a burst and is written after it. Here a
phase lasts long enough for the queue to pass many batches, and after a logged phase the next
one waits until the log has written everything (the server's own counters), so no phase pays
for another's rows. Versions 1 and 2 of one round are a pair: the log's cost is the median of
the paired ratios; 3 against 2 (the same thing twice, A/A) is how far a ratio moves with no
difference at all. A shared machine drifts by tens of percent over minutes, which is why the
comparison is paired and turned, never across runs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.c_load import ensure_installed, wrk_concurrent
from bench.load import LoadResult, metrics_counter, wait_until_logged
from bench.report import parser as cli, machine, verdict, write_section
from bench.serving import (LOAD_CORE, P99_NOISE, Server, build_model, mlserver,
                           write_repositories)

CALLERS = 64
# Version 1 logged, 2 and 3 not, and stock MLServer: one phase each per round.
CONFIGS = ("1", "2", "3", "stock")
LABELS = {"1": "this deployment, version 1, every row logged (SQLite), as shipped",
          "2": "the same server, version 2, the same model, not logged",
          "3": "the same server, version 3, not logged (the A/A control for 2)",
          "stock": "stock MLServer (xgboost runtime, `httptools`)"}


@dataclass
class Load:
    rounds: int
    seconds: float          # each phase
    warmup_seconds: float   # each server, once, at 16 callers


FULL = Load(rounds=3, seconds=40.0, warmup_seconds=15.0)
SMOKE = Load(rounds=1, seconds=2.0, warmup_seconds=1.0)


def measure_round(servers: dict[str, Server], X: np.ndarray, load: Load,
                  round_number: int) -> tuple[dict[str, LoadResult], float]:
    """One phase of each configuration, starting one later each round; the longest wait for
    the log to finish writing after a logged phase."""
    shift = round_number % len(CONFIGS)
    measured, catch_up = {}, 0.0
    for config in CONFIGS[shift:] + CONFIGS[:shift]:
        server = servers["stock" if config == "stock" else "ours"]
        measured[config] = wrk_concurrent(server.http_url, X[:1], CALLERS, load.seconds, 0.0,
                                          version=None if config == "stock" else config)
        if config == "1":
            catch_up = max(catch_up, wait_until_logged(server.metrics_url))
    return measured, catch_up


def paired(rounds: list[dict[str, LoadResult]], name: str, base: str) -> dict:
    throughput = [r[name].throughput / r[base].throughput for r in rounds]
    p99 = [r[name].percentile(99) / r[base].percentile(99) for r in rounds]
    return {"throughput": float(np.median(throughput)),
            "throughput_range": (min(throughput), max(throughput)),
            "p99": float(np.median(p99)), "p99_range": (min(p99), max(p99)),
            "pairs": len(rounds)}


def run(smoke: bool, out: Path) -> dict:
    load = SMOKE if smoke else FULL
    ensure_installed()
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {LOAD_CORE})
    rounds: list[dict[str, LoadResult]] = []
    catch_up = 0.0
    with tempfile.TemporaryDirectory(prefix="santander-sustained-") as tmp, \
            contextlib.ExitStack() as stack:
        folder = Path(tmp)
        model, X, _ = build_model(folder, rows=3_000 if smoke else 20_000)
        repos = write_repositories(folder, model)
        servers = {"ours": mlserver(repos["logcost"], folder / "work" / "ours"),
                   "stock": mlserver(repos["stock"], folder / "work" / "stock")}
        for server in servers.values():
            stack.callback(server.__exit__)
        for server in servers.values():
            server.__enter__()
        for name, server in servers.items():     # JIT-free, but caches, pools and the GC settle
            wrk_concurrent(server.http_url, X[:1], 16, load.warmup_seconds, 0.0,
                           version="2" if name == "ours" else None)
        for round_number in range(load.rounds):
            measured, waited = measure_round(servers, X, load, round_number)
            rounds.append(measured)
            catch_up = max(catch_up, waited)
            print(f"round {round_number + 1}/{load.rounds}: " + "  ".join(
                f"{c}: {r.throughput:.0f}/s p99 {r.percentile(99):.1f} ms" for c, r in
                measured.items()), flush=True)
        memory = {name: server.memory_mib() for name, server in servers.items()}
        log = {kind: servers["ours"].counter(f"santander_log_{kind}_rows_total")
               for kind in ("written", "dropped")}
        # The rows the server answered for the logged version, by its own count.
        logged_rows = metrics_counter(servers["ours"].metrics_url, "santander_scored_rows_total",
                                      model_version="1")
    summary = {"on_vs_off": paired(rounds, "1", "2"), "aa": paired(rounds, "3", "2"),
               "on_vs_stock": paired(rounds, "1", "stock"),
               "off_vs_stock": paired(rounds, "2", "stock"),
               "errors": sum(r.errors for m in rounds for r in m.values()),
               "written": log["written"], "dropped": log["dropped"],
               "answered": logged_rows, "catch_up_seconds": catch_up,
               "memory_mib": memory["ours"][0]}
    write_section(out, "sustained", render(rounds, summary, smoke, load))
    return summary


def targets(s: dict) -> list[tuple[str, str, bool]]:
    on, aa = s["on_vs_off"], s["aa"]
    p99_noise = max(P99_NOISE, aa["p99_range"][1])
    stock = s["on_vs_stock"]
    return [
        (f"prediction log on (every row) ≥ 0.9× log off at {CALLERS} concurrent REST, "
         "sustained, p99 within the A/A noise, no row dropped",
         f"{on['throughput']:.2f}× (pairs {on['throughput_range'][0]:.2f}–"
         f"{on['throughput_range'][1]:.2f}), p99 {on['p99']:.2f}× (A/A: "
         f"{aa['throughput']:.2f}×, p99 {aa['p99']:.2f}×); {s['written']:,.0f} rows written "
         f"of {s['answered']:,.0f} answered, {s['dropped']:,.0f} dropped",
         on["throughput"] >= 0.9 and on["p99"] <= p99_noise and s["dropped"] == 0
         and s["written"] == s["answered"]),
        (f"{CALLERS} concurrent REST, as shipped (log on), ≥ 2× stock MLServer with "
         "`httptools`, sustained, p99 no worse",
         f"{stock['throughput']:.2f}×, p99 {stock['p99']:.2f}× (log off: "
         f"{s['off_vs_stock']['throughput']:.2f}×, p99 {s['off_vs_stock']['p99']:.2f}×)",
         stock["throughput"] >= 2 and stock["p99"] <= 1),
    ]


def render(rounds: list[dict[str, LoadResult]], s: dict, smoke: bool, load: Load) -> str:
    lines = ["## Sustained", "", f"Measured on {machine()}." + (
        " **Smoke run (short phases): figures are not meaningful.**" if smoke else ""), "",
        f"{CALLERS} concurrent REST callers (`wrk`), one row per request, {load.seconds:.0f} s "
        f"per phase, {load.rounds} round(s) visiting each configuration once in turned order; "
        "after a logged phase the next waits until the log has written everything "
        f"(at most {s['catch_up_seconds']:.1f} s). `python -m bench.sustained` reproduces it.",
        "", "| target | measured | |", "| --- | --- | --- |"]
    lines += [f"| {what} | {measured} | {verdict(ok)} |" for what, measured, ok in targets(s)]
    lines += ["", "| configuration | per round: throughput (req/s), p99 (ms) | errors |",
              "| --- | --- | --- |"]
    for config in CONFIGS:
        cells = ", ".join(f"{r[config].throughput:,.0f} / {r[config].percentile(99):.1f}"
                          for r in rounds)
        lines.append(f"| {LABELS[config]} | {cells} | {sum(r[config].errors for r in rounds)} |")
    lines += ["", "Paired ratios, the median and the range over the rounds:", "",
              "| pair | throughput | p99 |", "| --- | --- | --- |"]
    for key, what in (("on_vs_off", "logged / not logged (1 / 2)"),
                      ("aa", "not logged / not logged (3 / 2, A/A: the noise)"),
                      ("on_vs_stock", "logged / stock"), ("off_vs_stock", "not logged / stock")):
        r = s[key]
        lines.append(f"| {what} | {r['throughput']:.2f}× ({r['throughput_range'][0]:.2f}–"
                     f"{r['throughput_range'][1]:.2f}) | {r['p99']:.2f}× "
                     f"({r['p99_range'][0]:.2f}–{r['p99_range'][1]:.2f}) |")
    lines += ["", f"Server memory (PSS, with the log's process): {s['memory_mib']:.0f} MiB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = cli(__doc__, "short phases, to check the script works").parse_args(argv)
    summary = run(args.smoke, Path(args.out))
    print(f"log on / off {summary['on_vs_off']['throughput']:.2f}×, A/A "
          f"{summary['aa']['throughput']:.2f}×, on / stock "
          f"{summary['on_vs_stock']['throughput']:.2f}×; errors {summary['errors']}, "
          f"dropped {summary['dropped']:.0f}")
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
