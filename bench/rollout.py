"""Rolling out: what shadow scoring costs the default's callers, what the deploy image's front
costs them, and how long `compare` takes.

    python -m bench.rollout                   # full run (~10 minutes on 2 cores)
    python -m bench.rollout --smoke --out /tmp/B.md      # short phases: keeps the script working

Shadow and front: four servers, all pinned to core 0 (`wrk` to core 1), each serving the same
XGBoost model (400 trees, depth 4, 200 features) as versions 1 and 2, version 1 the default,
every row logged to the SQLite prediction log as shipped; 64 concurrent REST callers ask the
default (no version), one row per request:
* "shadow": version 2 scores every request of the default in its shadow (`santander shadow 2`);
* "plain" and "plain again": no shadow; the second is the A/A control, the same thing twice;
* "front": no shadow, started as the deploy image starts it (deploy/front/entrypoint.sh):
  nginx in front, MLServer on 127.0.0.1 behind it, both on core 0, as in a one-core pod.
Each round runs one phase of each, in turned order; after each phase the next waits until the
log has written everything it was handed (the server's own counters), so no phase pays for
another's rows. A cost is the median of the paired ratios (shadow / plain, front / plain).

Compare: a SQLite log holding 100,000 rows scored by each of two versions (the same requests)
and their outcomes; `santander compare`'s function, timed from the log to the verdict.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.c_load import ensure_installed, wrk_concurrent
from bench.load import LoadResult, metrics_counter, wait_until_logged
from bench.report import machine, parser as cli, verdict, write_section
from bench.serving import LOAD_CORE, P99_NOISE, Server, build_model, mlserver
from bench.sustained import FULL, SMOKE, Load, paired

CALLERS = 64
CONFIGS = ("shadow", "plain", "plain again", "front")
ENTRYPOINT = Path(__file__).resolve().parents[1] / "deploy" / "front" / "entrypoint.sh"
COMPARE_ROWS = 100_000


def write_repositories(folder: Path, model) -> dict[str, Path]:
    """Versions 1 and 2 of the same model in each repository, 1 the default; one shadowed."""
    from santander.export import export_version
    from santander.layout import DefaultChoice, ShadowChoice, write_default, write_shadow
    repos = {}
    for config in CONFIGS:
        repo = folder / config.replace(" ", "-")
        for _ in range(2):
            export_version(model, "xgboost", 0.5, {"family": "xgboost"}, repo)
        write_default(repo, DefaultChoice(1))
        if config == "shadow":
            write_shadow(repo, ShadowChoice(2, 1.0))
        repos[config] = repo
    return repos


def measure_round(servers: dict, X: np.ndarray, load: Load,
                  round_number: int) -> dict[str, LoadResult]:
    shift = round_number % len(CONFIGS)
    measured = {}
    for config in CONFIGS[shift:] + CONFIGS[:shift]:
        server = servers[config]
        measured[config] = wrk_concurrent(server.http_url, X[:1], CALLERS, load.seconds, 0.0)
        wait_until_logged(server.metrics_url)
    return measured


def shadow_cost(smoke: bool) -> tuple[list[dict[str, LoadResult]], dict]:
    load = SMOKE if smoke else Load(rounds=3, seconds=30.0, warmup_seconds=FULL.warmup_seconds)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="santander-rollout-") as tmp, \
            contextlib.ExitStack() as stack:
        folder = Path(tmp)
        model, X, _ = build_model(folder, rows=3_000 if smoke else 20_000)
        repos = write_repositories(folder, model)
        servers = {c: (front if c == "front" else mlserver)(repo, folder / "work" / repo.name)
                   for c, repo in repos.items()}
        for server in servers.values():
            stack.callback(server.__exit__)
            server.__enter__()
        for server in servers.values():
            wrk_concurrent(server.http_url, X[:1], 16, load.warmup_seconds, 0.0)
            wait_until_logged(server.metrics_url)
        for round_number in range(load.rounds):
            rounds.append(measure_round(servers, X, load, round_number))
            print(f"round {round_number + 1}/{load.rounds}: " + "  ".join(
                f"{c}: {r.throughput:.0f}/s p99 {r.percentile(99):.1f} ms"
                for c, r in rounds[-1].items()), flush=True)
        shadowed = servers["shadow"]
        log = {kind: shadowed.counter(f"santander_log_{kind}_rows_total")
               for kind in ("written", "dropped")}
        answered = metrics_counter(shadowed.metrics_url, "santander_scored_rows_total")
        memory = {c: s.memory_mib()[0] for c, s in servers.items()}
    return rounds, {"cost": paired(rounds, "shadow", "plain"),
                    "aa": paired(rounds, "plain again", "plain"),
                    "front": paired(rounds, "front", "plain"),
                    # the front's share of the one core, per request: 1/throughput is the
                    # core's time per request when the server is the bottleneck
                    "front_us": float(np.median([
                        1e6 / r["front"].throughput - 1e6 / r["plain"].throughput
                        for r in rounds])),
                    "errors": sum(r.errors for m in rounds for r in m.values()),
                    # every answer logged twice: the default's row and the shadow's
                    "written": log["written"], "dropped": log["dropped"],
                    "expected": 2 * answered, "seconds": load.seconds, "rounds": load.rounds,
                    "memory": memory}


def front(repo: Path, workdir: Path) -> Server:
    """The server as the deploy image runs it: the entrypoint, nginx on the ports callers use,
    MLServer on loopback ports of its own behind it."""
    from santander.ops.launcher import free_port
    http, grpc = free_port(), free_port()
    env = {**os.environ, "MLSERVER_HTTP_PORT": str(http), "MLSERVER_GRPC_PORT": str(grpc),
           "MLSERVER_METRICS_PORT": str(free_port()),
           "SANTANDER_INNER_HTTP_PORT": str(free_port()),
           "SANTANDER_INNER_GRPC_PORT": str(free_port()),
           "SANTANDER_INNER_METRICS_PORT": str(free_port()),
           "SANTANDER_REPOSITORY": str(repo), "SANTANDER_FRONT_DIR": str(workdir / "front"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return Server(["bash", str(ENTRYPOINT)], workdir, env, http, grpc)


def compare_time(rows: int) -> dict:
    """Seconds `compare_versions` takes on a log of `rows` rows per version, best of three."""
    from sqlalchemy import insert
    from santander.monitoring.compare import compare_versions
    from santander.prediction_log.tables import connect, outcomes, predictions
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.1).astype(int)
    now = datetime.now(timezone.utc)
    keys = [(f"req-{i}", 0) for i in range(rows)]
    with tempfile.TemporaryDirectory(prefix="santander-compare-") as tmp:
        engine = connect(f"sqlite:///{Path(tmp) / 'log.sqlite'}")
        features = rng.normal(size=(1, 200)).astype("<f4").tobytes()
        with engine.begin() as connection:
            for version, noise in (("1", 1.5), ("2", 1.2)):
                proba = 1 / (1 + np.exp(-(3 * y - 1.5 + rng.normal(0, noise, rows))))
                connection.execute(insert(predictions), [
                    {"logged_at": now, "request_id": r, "row_index": k,
                     "model_name": "xgboost-model", "model_version": version,
                     "features": features, "probability": float(p), "label": int(p >= 0.5),
                     "threshold": 0.5, "latency_ms": 1.0} for (r, k), p in zip(keys, proba)])
            connection.execute(insert(outcomes), [
                {"recorded_at": now, "request_id": r, "row_index": k, "target": int(t)}
                for (r, k), t in zip(keys, y)])
        timings, verdict_line = [], ""
        for _ in range(3):
            started = time.perf_counter()
            comparison = compare_versions(engine, "xgboost-model", "1", "2")
            timings.append(time.perf_counter() - started)
            verdict_line = comparison.why()
        engine.dispose()
    return {"seconds": min(timings), "rows": rows, "verdict": verdict_line}


def run(smoke: bool, out: Path) -> dict:
    ensure_installed()
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {LOAD_CORE})
    rounds, summary = shadow_cost(smoke)
    summary["compare"] = compare_time(5_000 if smoke else COMPARE_ROWS)
    write_section(out, "rollout", render(rounds, summary, smoke))
    return summary


def targets(s: dict) -> list[tuple[str, str, bool]]:
    cost, aa, compared = s["cost"], s["aa"], s["compare"]
    p99_noise = max(P99_NOISE, aa["p99_range"][1])
    return [
        (f"shadow at rate 1 costs ≤ 10% of the default's throughput at {CALLERS} concurrent "
         "REST, sustained, p99 within the A/A noise, no logged row dropped",
         f"{cost['throughput']:.2f}× (pairs {cost['throughput_range'][0]:.2f}–"
         f"{cost['throughput_range'][1]:.2f}), p99 {cost['p99']:.2f}× (A/A: "
         f"{aa['throughput']:.2f}×, p99 {aa['p99']:.2f}×); {s['written']:,.0f} rows written of "
         f"{s['expected']:,.0f} (default and shadow), {s['dropped']:,.0f} dropped",
         cost["throughput"] >= 0.9 and cost["p99"] <= p99_noise and s["dropped"] == 0
         and s["written"] == s["expected"]),
        (f"`compare` on {compared['rows']:,} logged rows with outcomes ≤ 5 s",
         f"{compared['seconds']:.2f} s", compared["seconds"] <= 5.0),
    ]


def render(rounds: list[dict[str, LoadResult]], s: dict, smoke: bool) -> str:
    lines = ["## Rollout", "", f"Measured on {machine()}." + (
        " **Smoke run (short phases, a small log): figures are not meaningful.**" if smoke
        else ""), "",
        f"Shadow and front: four servers serving the same XGBoost model (400 trees, depth 4) as "
        f"versions 1 (the default) and 2, every row logged (SQLite), one of them started as the "
        f"deploy image starts it (nginx in front, on the server's core); {CALLERS} concurrent "
        f"REST callers "
        f"(`wrk`) ask the default, one row per request, {s['seconds']:.0f} s per phase, "
        f"{s['rounds']} round(s) in turned order, each phase after the log has written the "
        "last. Compare: two versions' rows and their outcomes in a SQLite log, timed from the "
        "log to the verdict (best of 3). `python -m bench.rollout` reproduces it.", "",
        "| target | measured | |", "| --- | --- | --- |"]
    lines += [f"| {what} | {measured} | {verdict(ok)} |" for what, measured, ok in targets(s)]
    lines += ["", "| configuration | per round: throughput (req/s), p99 (ms) | errors | "
              "memory (PSS) |", "| --- | --- | --- | --- |"]
    labels = {"shadow": "version 2 scoring in the default's shadow (rate 1)",
              "plain": "no shadow", "plain again": "no shadow (the A/A control)",
              "front": "no shadow, behind the deploy image's front (nginx, same core)"}
    for config in CONFIGS:
        cells = ", ".join(f"{r[config].throughput:,.0f} / {r[config].percentile(99):.1f}"
                          for r in rounds)
        lines.append(f"| {labels[config]} | {cells} | "
                     f"{sum(r[config].errors for r in rounds)} | {s['memory'][config]:.0f} MiB |")
    front_cost = s["front"]
    lines += ["", f"The front (deploy/front/, which keeps load and unload to the operator): "
              f"throughput {front_cost['throughput']:.2f}× no front (pairs "
              f"{front_cost['throughput_range'][0]:.2f}–{front_cost['throughput_range'][1]:.2f}),"
              f" p99 {front_cost['p99']:.2f}×; about {s['front_us']:.0f} µs of the core per "
              "request. A measurement, not a target.",
              "", f"Compare: {s['compare']['verdict']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = cli(__doc__, "short phases and a small log, to check the script works").parse_args(
        argv)
    summary = run(args.smoke, Path(args.out))
    print(f"shadow / plain {summary['cost']['throughput']:.2f}×, A/A "
          f"{summary['aa']['throughput']:.2f}×, front / plain "
          f"{summary['front']['throughput']:.2f}×; dropped {summary['dropped']:.0f}; compare "
          f"{summary['compare']['seconds']:.2f} s on {summary['compare']['rows']:,} rows")
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
