"""Serving benchmark: one run, side by side, written to BENCHMARKS.md.

    python -m bench.serving                 # full run (~10 minutes on 2 cores)
    python -m bench.serving --smoke --out /tmp/B.md    # tiny load: keeps the script working

The same XGBoost model (400 trees, depth 4, 200 features) is served by: stock MLServer with
its xgboost runtime and stock settings, stock MLServer with `parallel_workers` 0 and no
batching, a plain FastAPI service, and this project's deployment (our runtime, our settings,
adaptive batching on, the prediction log on, as shipped). One request is one row, except in
the rows that show what 64 rows per request do to each protocol. The bare transports MLServer is built on (uvicorn and
grpc.aio, doing no work) give the floor under its REST and gRPC. Each server is pinned to
core 0 and the load generator to core 1, so they do not steal from each other: one blocking
Python caller for the sequential rows (its latency is mostly the server's), `wrk` and `h2load`
for the concurrent ones (`bench/c_load.py`; a Python client would be the ceiling there).

The winner that selection serves on the built-in data (`WINNER_FAMILY`, a per-feature table)
is served too, by this project's deployment and by the plain FastAPI peer, and held to the same
targets. Stock MLServer's runtimes cannot load that table, so the stock baselines stay on
XGBoost: the winner's ratios against them say what the new winner costs against the old one.

All servers run at once, idle but for the one under load, and the load comes in rounds that
visit every configuration in turn. A shared machine's speed drifts by tens of percent over
minutes; measuring in rounds lets every configuration see the same drift, so the ratios
hold even when the absolute figures move.

These are short bursts: a log queue absorbs a burst and writes it afterwards, so the
prediction log's cost, and the deployment against stock MLServer in steady state, are measured
in sustained phases by `bench/sustained.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.c_load import ensure_installed, h2load_concurrent, wrk_concurrent
from bench.load import (BlockingGrpcCaller, BlockingRestCaller, LoadResult, metrics_counter,
                        sequential)
from bench.report import parser as cli, machine, verdict, write_section
from santander.config import LOG_SAMPLE_RATE_SETTING, MODEL_NAME
from santander.layout import SETTINGS_FILE

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE, LOAD_CORE = 0, 1
# What `make run` selects on the built-in data (BENCHMARKS.md, Selection). The other
# per-feature family, `additive`, ships the same table format, so it serves at the same cost.
WINNER_FAMILY = "histogram_nb"


@dataclass
class Load:
    rounds: int
    sequential_requests: int    # per round
    seconds: float              # per round, for each concurrency
    warmup_seconds: float       # before each concurrent measurement


FULL = Load(rounds=5, sequential_requests=200, seconds=2.0, warmup_seconds=1.0)
SMOKE = Load(rounds=1, sequential_requests=30, seconds=1.0, warmup_seconds=0.0)
PHASES = ("sequential", "16", "64")


@dataclass(frozen=True)
class PlanRow:
    """One row of the table: a configuration, a protocol, and how it is loaded."""
    config: str
    protocol: str                       # "rest" or "grpc"
    rows: int = 1                       # rows per request
    phases: tuple[str, ...] = PHASES


def build_model(folder: Path, rows: int):
    from xgboost import XGBClassifier
    from santander.training.data.synthetic import generate
    frame = generate(rows, seed=1)
    X, y = frame.filter(like="var_").to_numpy(np.float32), frame["target"].to_numpy()
    model = XGBClassifier(n_estimators=400, max_depth=4, learning_rate=0.1,
                          tree_method="hist", n_jobs=os.cpu_count())
    model.fit(X, y)
    model.save_model(folder / "model.ubj")
    return model, X, y


def export_winner(folder: Path, X: np.ndarray, y: np.ndarray) -> Path:
    """The winner family fitted on the same rows, exported as `make run` exports it."""
    from santander.export import export_version
    from santander.training.candidates import get_family
    family = get_family(WINNER_FAMILY)
    estimator = family.build().fit(X, y)
    return export_version(estimator, family.artifact_format, 0.5, {"family": family.name},
                          folder / "winner")


def write_repositories(folder: Path, model) -> dict[str, Path]:
    """Model repositories for the three MLServer configurations."""
    from santander.export import export_version
    repos = {}
    for name, settings, batching in (
            ("stock", {}, {"max_batch_size": 64, "max_batch_time": 0.01}),
            ("stock-pw0", {"parallel_workers": 0}, {})):
        version = folder / name / MODEL_NAME
        version.mkdir(parents=True)
        model.save_model(version / "model.json")   # the stock runtime reads JSON or UBJ by suffix
        (folder / name / "settings.json").write_text(json.dumps(settings))
        (version / "model-settings.json").write_text(json.dumps({
            "name": MODEL_NAME, "implementation": "mlserver_xgboost.XGBoostModel",
            **batching, "parameters": {"uri": "./model.json"}}))
        repos[name] = folder / name
    version = export_version(model, "xgboost", 0.5, {"family": "xgboost"}, folder / "ours")
    repos["ours"] = folder / "ours"
    # The same deployment with a 1 ms batching window: what the shorter default buys.
    shutil.copytree(folder / "ours", folder / "ours-1ms")
    settings_path = folder / "ours-1ms" / version.relative_to(folder / "ours") / \
        "model-settings.json"
    settings = json.loads(settings_path.read_text())
    settings["max_batch_time"] = 0.001
    settings_path.write_text(json.dumps(settings))
    repos["ours-1ms"] = folder / "ours-1ms"
    # The log's cost, inside one process: versions 1 (logged), 2 and 3 (not) of the same model.
    for number in (1, 2, 3):
        version = export_version(model, "xgboost", 0.5, {"family": "xgboost"},
                                 folder / "logcost")
        if number > 1:
            _set_extra(version, {LOG_SAMPLE_RATE_SETTING: 0})
    repos["logcost"] = folder / "logcost"
    return repos


def _set_extra(version: Path, extra: dict) -> None:
    path = version / SETTINGS_FILE
    settings = json.loads(path.read_text())
    settings["parameters"]["extra"].update(extra)
    path.write_text(json.dumps(settings))


def pinned(command: list[str], core: int) -> list[str]:
    return (["taskset", "-c", str(core), *command]
            if shutil.which("taskset") and os.cpu_count() > 1 else command)


class Server:
    """A server process pinned to SERVER_CORE, ready on 127.0.0.1."""

    def __init__(self, command: list[str], workdir: Path, env: dict[str, str], http_port: int,
                 grpc_port: int | None):
        self.http_url = f"http://127.0.0.1:{http_port}"
        self.grpc_address = f"127.0.0.1:{grpc_port}" if grpc_port else None
        self.metrics_port = env.get("MLSERVER_METRICS_PORT")
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "server.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(pinned(command, SERVER_CORE), cwd=workdir, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self):
        from santander.ops.launcher import wait_until_ready
        try:
            wait_until_ready(self.http_url, timeout=180,
                             is_alive=lambda: self.process.poll() is None)
        except BaseException:
            self.__exit__()
            print(self.log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        return self

    def __exit__(self, *exc):
        from santander.ops.launcher import stop_process
        stop_process(self.process)
        self.log.close()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def counter(self, name: str) -> float:
        return metrics_counter(self.metrics_url, name)

    def memory_mib(self) -> tuple[float, int]:
        """PSS of the server and its children (MiB), and the number of processes."""
        import psutil
        root = psutil.Process(self.process.pid)
        processes = [root, *root.children(recursive=True)]
        total = 0
        for process in processes:
            try:
                total += process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        # taskset execs the server, so the root is the server itself.
        return total / 2**20, len(processes)


def mlserver(repo: Path, workdir: Path, stock_install: bool = False,
             env_extra: dict[str, str] | None = None) -> Server:
    """MLServer on free ports; `stock_install` runs it with the HTTP parser a stock install has."""
    from santander.ops.launcher import free_port, mlserver_command, server_environment
    http, grpc = free_port(), free_port()
    env = server_environment(host="127.0.0.1", http_port=http, grpc_port=grpc,
                             metrics_port=free_port())
    env.update(env_extra or {})
    command = mlserver_command(repo)
    if stock_install:
        env["PYTHONPATH"] = str(ROOT)
        command = [sys.executable, "-m", "bench.stock_mlserver", *command[1:]]
    return Server(command, workdir, env, http, grpc)


def fastapi_peer(model: dict[str, str], workdir: Path) -> Server:
    """The FastAPI peer serving `model`: {"BENCH_MODEL": booster} or {"BENCH_VERSION": folder}."""
    from santander.ops.launcher import free_port
    http = free_port()
    env = {**os.environ, **model, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "uvicorn", "bench.fastapi_peer:app", "--host",
               "127.0.0.1", "--port", str(http), "--no-access-log", "--log-level", "warning"]
    return Server(command, workdir, env, http, None)


def bare_transports(workdir: Path) -> Server:
    from santander.ops.launcher import free_port
    http, grpc = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench.bare_transports", "--http-port", str(http),
               "--grpc-port", str(grpc)]
    return Server(command, workdir, env, http, grpc)


def in_process_floor(model_path: Path, winner_version: Path, X: np.ndarray,
                     smoke: bool) -> dict[str, float]:
    """One row through XGBoost, through the runtime's small-batch path and through the
    winner as the runtime loads it; XGBoost's cost per row at 64 rows."""
    import xgboost
    from santander.loader import load_version
    from santander.trees import SmallBatchTrees
    booster = xgboost.Booster(model_file=str(model_path))
    booster.set_param({"nthread": 1})
    small_batches = SmallBatchTrees.from_booster(booster)
    from santander.export import export_version
    from santander.serving.explain import explainer_for
    winner, _ = load_version(winner_version)
    xgboost_served, _ = load_version(export_version(
        XGBClassifier_from(model_path), "xgboost", 0.5, {"family": "xgboost"},
        model_path.parent / "explained"))
    row, batch = X[:1], X[:64]
    repeats = 50 if smoke else 2000

    def p50_ms(predict) -> float:
        for _ in range(20):
            predict(row)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict(row)
            times.append((time.perf_counter() - start) * 1000)
        return float(np.median(times))

    start = time.perf_counter()
    for _ in range(repeats // 10):
        booster.inplace_predict(batch)
    per_row_us = (time.perf_counter() - start) / (repeats // 10) / 64 * 1e6
    return {"p50_ms": p50_ms(booster.inplace_predict),
            "small_batch_p50_ms": p50_ms(small_batches.predict),
            "winner_p50_ms": p50_ms(winner.predict_proba),
            "per_row_us_at_64": per_row_us,
            "xgboost_contributions_p50_ms": p50_ms(explainer_for(xgboost_served)),
            "winner_contributions_p50_ms": p50_ms(explainer_for(winner))}


def XGBClassifier_from(model_path: Path):
    """The benchmark's XGBoost model as a fitted classifier, as export takes it."""
    from xgboost import XGBClassifier
    classifier = XGBClassifier()
    classifier.load_model(model_path)
    return classifier


def measure_phase(server: Server, plan_row: PlanRow, X: np.ndarray, phase: str,
                  load: Load) -> LoadResult:
    target = server.http_url if plan_row.protocol == "rest" else server.grpc_address
    rows = X[:plan_row.rows]
    if phase == "sequential":
        caller = BlockingRestCaller if plan_row.protocol == "rest" else BlockingGrpcCaller
        return sequential(lambda: caller(target, rows), load.sequential_requests)
    measure = wrk_concurrent if plan_row.protocol == "rest" else h2load_concurrent
    return measure(target, rows, int(phase), load.seconds, load.warmup_seconds)


LABELS = {
    "stock": "stock MLServer defaults (`parallel_workers` 1) + adaptive batching 64 / 10 ms, "
             "as installed (h11)",
    "stock-httptools": "the same stock MLServer with this project's `httptools`",
    "stock-pw0": "stock MLServer, `parallel_workers` 0, no batching, as installed (h11)",
    "fastapi": "plain FastAPI + booster loaded once (`httptools`, as `fastapi[standard]`)",
    "ours": "this project's deployment (`deploy/` settings, our runtime, batching "
            "64 / 0.1 ms, every row logged to the SQLite prediction log)",
    "ours-1ms": "the same with a 1 ms batching window",
    "fastapi-winner": f"plain FastAPI serving the winner ({WINNER_FAMILY} table, loaded as the "
                      "runtime loads it)",
    "winner": f"this project's deployment serving the winner ({WINNER_FAMILY} table)",
    "bare": "bare transports, no work: uvicorn + `httptools` and `grpc.aio` on one uvloop, "
            "as in MLServer (`bench/bare_transports.py`)",
}
SEQUENTIAL = ("sequential",)
PLAN = [PlanRow("stock", "rest"), PlanRow("stock", "grpc"), PlanRow("stock-httptools", "rest"),
        PlanRow("stock-pw0", "rest"), PlanRow("fastapi", "rest"), PlanRow("ours", "rest"),
        PlanRow("ours", "grpc"),
        PlanRow("ours-1ms", "rest"), PlanRow("ours-1ms", "grpc"),
        PlanRow("fastapi-winner", "rest"), PlanRow("winner", "rest"), PlanRow("winner", "grpc"),
        # Where each protocol's cost comes from: the bare transports, and bigger requests.
        PlanRow("bare", "rest", phases=SEQUENTIAL), PlanRow("bare", "grpc", phases=SEQUENTIAL),
        PlanRow("ours", "rest", rows=64, phases=SEQUENTIAL),
        PlanRow("ours", "grpc", rows=64, phases=SEQUENTIAL),
        PlanRow("winner", "rest", rows=64, phases=SEQUENTIAL),
        PlanRow("winner", "grpc", rows=64, phases=SEQUENTIAL)]


def start_servers(stack: contextlib.ExitStack, folder: Path, repos: dict[str, Path],
                  winner_version: Path) -> dict[str, Server]:
    """Every configuration's server, started together and entered (ready) one by one."""
    work = folder / "work"
    servers = {
        "stock": mlserver(repos["stock"], work / "stock", stock_install=True),
        "stock-httptools": mlserver(repos["stock"], work / "stock-httptools"),
        "stock-pw0": mlserver(repos["stock-pw0"], work / "stock-pw0", stock_install=True),
        "fastapi": fastapi_peer({"BENCH_MODEL": str(folder / "model.ubj")}, work / "fastapi"),
        "ours": mlserver(repos["ours"], work / "ours"),
        "ours-1ms": mlserver(repos["ours-1ms"], work / "ours-1ms"),
        "fastapi-winner": fastapi_peer({"BENCH_VERSION": str(winner_version)},
                                       work / "fastapi-winner"),
        "winner": mlserver(folder / "winner", work / "winner"),
        "bare": bare_transports(work / "bare"),
    }
    for server in servers.values():
        stack.callback(server.__exit__)        # stops every process, even if one never started
    for server in servers.values():
        server.__enter__()
    return servers


def run(smoke: bool, out: Path) -> dict:
    load = SMOKE if smoke else FULL
    ensure_installed()
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {LOAD_CORE})
    results = {plan_row: {phase: LoadResult() for phase in plan_row.phases}
               for plan_row in PLAN}
    with tempfile.TemporaryDirectory(prefix="santander-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        folder = Path(tmp)
        model, X, y = build_model(folder, rows=3_000 if smoke else 20_000)
        repos = write_repositories(folder, model)
        winner_version = export_winner(folder, X, y)
        floor = in_process_floor(folder / "model.ubj", winner_version, X, smoke)
        servers = start_servers(stack, folder, repos, winner_version)
        for round_number in range(load.rounds):
            # Each round starts one configuration later, so none always goes first.
            shift = round_number % len(PLAN)
            for plan_row in PLAN[shift:] + PLAN[:shift]:
                for phase in plan_row.phases:
                    results[plan_row][phase].add(measure_phase(
                        servers[plan_row.config], plan_row, X, phase, load))
            print(f"round {round_number + 1}/{load.rounds} done", flush=True)
        memory = {name: server.memory_mib() for name, server in servers.items()}
    entries = {}
    for plan_row, loads in results.items():
        name = plan_row.config
        entries[plan_row] = {"loads": loads, "memory_mib": memory[name][0],
                             "processes": memory[name][1]}
        print(f"{name:>15} {plan_row.protocol:<4} {plan_row.rows:>2} row(s) " + "  ".join(
            f"{k}: {r.throughput:.0f}/s p50 {r.percentile(50):.2f} ms "
            f"p99 {r.percentile(99):.2f} ms err {r.errors}" for k, r in loads.items())
            + f"  {memory[name][0]:.0f} MiB", flush=True)
    summary = summarise(entries, floor)
    write_section(out, "serving", render(entries, floor, summary, smoke, load))
    return summary


def summarise(results: dict, floor: dict) -> dict:
    by_key = {(plan_row.config, plan_row.protocol, plan_row.rows): entry
              for plan_row, entry in results.items()}

    def get(name, protocol, load, rows=1):
        return by_key[(name, protocol, rows)]["loads"][load]

    def grpc_vs_rest(name, rows=1):
        return (get(name, "grpc", "sequential", rows).percentile(50)
                / get(name, "rest", "sequential", rows).percentile(50))

    def deployment(name: str, peer: str) -> dict:
        at64, at16, one = get(name, "rest", "64"), get(name, "rest", "16"), \
            get(name, "rest", "sequential")
        stock64, stock64_httptools = get("stock", "rest", "64"), \
            get("stock-httptools", "rest", "64")
        return {
            "throughput_64_vs_stock": at64.throughput / stock64.throughput,
            "p99_64_vs_stock": at64.percentile(99) / stock64.percentile(99),
            "throughput_64_vs_stock_httptools": at64.throughput / stock64_httptools.throughput,
            "p99_64_vs_stock_httptools": at64.percentile(99) / stock64_httptools.percentile(99),
            "throughput_16_vs_fastapi": at16.throughput / get(peer, "rest", "16").throughput,
            "sequential_p50_vs_fastapi": one.percentile(50)
            / get(peer, "rest", "sequential").percentile(50),
            "grpc_vs_rest_sequential_p50": grpc_vs_rest(name),
            "grpc_vs_rest_64_rows_sequential_p50": grpc_vs_rest(name, rows=64),
            "memory_mib": by_key[(name, "rest", 1)]["memory_mib"],
        }
    # Both deployments against the same baselines (stock MLServer and FastAPI serving XGBoost),
    # as the targets were set; the winner also against the XGBoost deployment (is it as fast as
    # what it replaces?) and against FastAPI serving the very same table.
    def relative(name: str, other: str) -> dict:
        """name's sequential p50 and 16 / 64 concurrent REST throughput, as ratios to other's."""
        return {"sequential_p50": get(name, "rest", "sequential").percentile(50)
                / get(other, "rest", "sequential").percentile(50),
                **{f"throughput_{n}": get(name, "rest", n).throughput
                   / get(other, "rest", n).throughput for n in ("16", "64")}}
    winner = {**deployment("winner", "fastapi"), "vs_xgboost": relative("winner", "ours"),
              "vs_fastapi_same_model": relative("winner", "fastapi-winner")}
    return {
        "ours": deployment("ours", "fastapi"), "winner": winner,
        "grpc_vs_rest_bare_sequential_p50": grpc_vs_rest("bare"),
        "errors": sum(r.errors for v in results.values() for r in v["loads"].values()),
        "floor": floor,
    }


def targets(summary: dict, name: str) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for one deployment."""
    s = summary[name]
    return [
        # Against stock with the same HTTP parser, the stricter row; as installed (h11) beside.
        ("64 concurrent REST throughput ≥ 2× stock defaults (with `httptools`), p99 no worse",
         f"{s['throughput_64_vs_stock_httptools']:.2f}×, p99 "
         f"{s['p99_64_vs_stock_httptools']:.2f}× (against stock as installed, h11: "
         f"{s['throughput_64_vs_stock']:.2f}×, p99 {s['p99_64_vs_stock']:.2f}×)",
         s["throughput_64_vs_stock_httptools"] >= 2 and s["p99_64_vs_stock_httptools"] <= 1),
        ("16 concurrent REST ≥ 1.0× plain FastAPI", f"{s['throughput_16_vs_fastapi']:.2f}×",
         s["throughput_16_vs_fastapi"] >= 1),
        ("sequential p50 (batching on) ≤ 1.5× plain FastAPI",
         f"{s['sequential_p50_vs_fastapi']:.2f}×", s["sequential_p50_vs_fastapi"] <= 1.5),
        # One row per request, gRPC cannot win on Python's grpc.aio (BENCHMARKS.md says why):
        # the floor stays measured beside.
        ("gRPC sequential p50 ≤ REST's at 64 rows per request",
         f"{s['grpc_vs_rest_64_rows_sequential_p50']:.2f}× (one row per request: "
         f"{s['grpc_vs_rest_sequential_p50']:.2f}×; bare transports, no work: "
         f"{summary['grpc_vs_rest_bare_sequential_p50']:.2f}×)",
         s["grpc_vs_rest_64_rows_sequential_p50"] <= 1),
        ("server memory ≤ 300 MiB PSS", f"{s['memory_mib']:.0f} MiB", s["memory_mib"] <= 300),
    ] + ([] if name == "ours" else [
        ("a lone row scored in-process in ≤ 0.1 ms (the runtime's model, no HTTP)",
         f"{summary['floor']['winner_p50_ms']:.3f} ms", summary["floor"]["winner_p50_ms"] <= 0.1)]
    ) + ([] if name == "ours" else [_contributions_target(summary)])


# p99 "no worse beyond noise": run-to-run p99 moves by up to ~25% here (BENCHMARKS.md).
P99_NOISE = 1.25


def _contributions_target(summary: dict) -> tuple[str, str, bool]:
    # XGBoost's is held on the xgboost family as selection trains it (bench/fast_paths.py),
    # not on this section's 400-tree depth-4 model.
    value = summary["floor"]["winner_contributions_p50_ms"]
    return ("one row's `contributions` in ≤ 2 ms (in-process, the runtime's explainer)",
            f"{value:.3f} ms", value <= 2.0)


def render(results: dict, floor: dict, summary: dict, smoke: bool, load: Load) -> str:
    lines = ["## Serving", "", f"Measured on {machine()}." + (
        " **Smoke run (tiny load): figures are not meaningful.**" if smoke else ""),
        "Server pinned to core 0, load generator (one row per request unless marked) to core 1: "
        "sequential from one blocking Python caller (`bench/load.py`: http.client / gRPC stub), "
        "concurrent from C load generators (`bench/c_load.py`: `wrk` with one connection per "
        "caller for REST, `h2load` with one stream per caller on one HTTP/2 connection for "
        "gRPC), so the client is not the ceiling; gRPC sends the rows as "
        "`raw_input_contents`, as Triton's client does; same XGBoost model (400 trees, depth 4, "
        "200 features) everywhere but in the winner's rows, which serve the family selection "
        f"serves on the built-in data ({WINNER_FAMILY}, fitted on the same rows). All servers "
        "up at once; the load visits every configuration "
        f"in each of {load.rounds} round(s) ({load.sequential_requests} sequential requests, "
        f"{load.seconds:g} s at 16 and at 64 concurrent per round), pooled. These are short "
        "bursts, which a log queue absorbs: the log's cost, and 64 callers in a steady state, "
        "are in the Sustained section (`bench/sustained.py`). "
        "`python -m bench.serving` reproduces it.", "",
        "| configuration | protocol | sequential p50 / p99 | 16 concurrent | 64 concurrent "
        "(p50 / p99) | errors | server memory (PSS) |",
        "| --- | --- | --- | --- | --- | --- | --- |"]
    for plan_row, entry in results.items():
        loads = entry["loads"]
        label = LABELS[plan_row.config] + (
            f", **{plan_row.rows} rows per request**" if plan_row.rows > 1 else "")
        seq = loads["sequential"]
        c16 = f"{loads['16'].throughput:.0f} req/s" if "16" in loads else "—"
        c64 = (f"{loads['64'].throughput:.0f} req/s ({loads['64'].percentile(50):.1f} / "
               f"{loads['64'].percentile(99):.1f} ms)" if "64" in loads else "—")
        lines.append(
            f"| {label} | {'REST' if plan_row.protocol == 'rest' else 'gRPC'} "
            f"| {seq.percentile(50):.2f} / {seq.percentile(99):.2f} ms | {c16} | {c64} "
            f"| {sum(r.errors for r in loads.values())} "
            f"| {entry['memory_mib']:.0f} MiB, {entry['processes']} process(es) |")
    lines += [f"| in-process `inplace_predict` (no HTTP) | — | {floor['p50_ms']:.3f} ms (1 row) "
              f"| — | {floor['per_row_us_at_64']:.1f} µs/row at 64 rows | — | — |",
              f"| in-process small-batch path (`santander.trees`, no HTTP) | — "
              f"| {floor['small_batch_p50_ms']:.3f} ms (1 row) | — | — | — | — |",
              f"| in-process winner ({WINNER_FAMILY} table as the runtime loads it, no HTTP) "
              f"| — | {floor['winner_p50_ms']:.3f} ms (1 row) | — | — | — | — |",
              f"| in-process `contributions` of one row (`santander.serving.explain`): XGBoost's "
              f"`pred_contribs` / the winner's table | — | "
              f"{floor['xgboost_contributions_p50_ms']:.3f} / "
              f"{floor['winner_contributions_p50_ms']:.3f} ms | — | — | — | — |", ""]
    for name, heading in (("ours", "target (this project's deployment, XGBoost)"),
                          ("winner", f"target (this project's deployment, the winner: "
                                     f"{WINNER_FAMILY})")):
        lines += [f"| {heading} | measured | |", "| --- | --- | --- |"]
        lines += [f"| {what} | {value} | {verdict(ok)} |"
                  for what, value, ok in targets(summary, name)]
        lines.append("")
    same, old = (summary["winner"]["vs_fastapi_same_model"],
                 summary["winner"]["vs_xgboost"])
    lines.append(
        "The targets compare with the baselines they were set against, which serve XGBoost. "
        f"Against this deployment serving XGBoost, serving the winner takes "
        f"{old['sequential_p50']:.2f}× the sequential p50, and gives "
        f"{old['throughput_16']:.2f}× the throughput at 16 and {old['throughput_64']:.2f}× at 64 "
        f"concurrent. Against plain FastAPI serving the same {WINNER_FAMILY} table (no target): "
        f"{same['sequential_p50']:.2f}× the sequential p50, {same['throughput_16']:.2f}× the "
        f"throughput at 16 and {same['throughput_64']:.2f}× at 64 concurrent; with a model this "
        "cheap, a request's cost is the server's own.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = cli(__doc__, "tiny load, to keep it working")
    args = parser.parse_args(argv)
    summary = run(args.smoke, Path(args.out))
    print(json.dumps({k: v for k, v in summary.items() if k != "floor"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
