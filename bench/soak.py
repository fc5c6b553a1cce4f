"""Soak: a served model under steady load for minutes, with bad requests mixed in and its
versions changing under it, once with the prediction log on and once with it off, written to
BENCHMARKS.md.

    python -m bench.soak                  # 2 x 10 minutes at 16 concurrent callers
    python -m bench.soak --smoke --out /tmp/B.md    # two parts of 6 s each way (CI)

`wrk` (one thread, 16 connections, pinned to core 1; the server to core 0) sends V2 requests
for the repository's two versions of the built-in winner: 95% valid, one row each, and 5%
invalid (199 features). A Lua script classifies every answer: 200 for a valid request, a 400
naming the shape for an invalid one; anything else is a failed request. Once a minute the
default moves to version 1 and version 2 is retired, or 2 is promoted back as the default
(`santander.ops.versions`), so the endpoint moves between versions while the load runs. The RSS of the server and its children (the
log's process) is sampled every second. Sixteen callers keep the server's core saturated.

Targets, each way: no failed request; RSS growth after the first minute (warm-up) ≤ 10%; the
last minute's p99 ≤ 1.5× the first minute's. With the log on, nothing is lost but what is
counted: every valid answer's row is written or counted as dropped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.c_load import WRK_RESULT_LUA, ensure_installed, read_wrk_result
from bench.load import rest_body
from bench.report import machine, parser as cli, verdict, write_section
from santander.config import MODEL_NAME

SERVER_CORE, LOAD_CORE = 0, 1
CALLERS = 16
INVALID_SHARE = 0.05

_SCRIPT = WRK_RESULT_LUA + """
-- Counts live in each thread's own Lua state (globals there); done() runs in the main state
-- and reads them through the thread objects setup() kept.
local threads = {}
local bodies = {}
local invalid_body

local function read(path)
  local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, refused, failed, failures = 0, 0, 0, ""
  local folder = os.getenv("SOAK_DIR")
  for i = 0, tonumber(os.getenv("SOAK_BODIES")) - 1 do
    bodies[#bodies + 1] = read(folder .. "/valid-" .. i .. ".json")
  end
  invalid_body = read(folder .. "/invalid.json")
  math.randomseed(tonumber(os.getenv("SOAK_SEED")))
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  if math.random() < tonumber(os.getenv("SOAK_INVALID_SHARE")) then
    return wrk.format("POST", nil, nil, invalid_body)
  end
  return wrk.format("POST", nil, nil, bodies[math.random(#bodies)])
end

function response(status, headers, body)
  if status == 200 and body:find('"probability"', 1, true) then
    ok = ok + 1
  elseif status == 400 and body:find("[1, 199]", 1, true) then
    refused = refused + 1
  else
    failed = failed + 1
    if failed <= 3 then failures = failures .. status .. " " .. body:sub(1, 200) .. " | " end
  end
end

function done(summary, latency, requests)
  local ok_, refused_, failed_, failures_ = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    ok_ = ok_ + thread:get("ok")
    refused_ = refused_ + thread:get("refused")
    failed_ = failed_ + thread:get("failed")
    failures_ = failures_ .. thread:get("failures")
  end
  write_result(summary, latency, string.format("%d %d %d %s", ok_, refused_, failed_,
                                               failures_))
end
"""


@dataclass
class Part:
    """One stretch of load (a minute, or a third of the smoke's)."""
    seconds: float
    ok: int = 0
    refused: int = 0
    failed: int = 0
    socket_errors: int = 0
    first_failures: str = ""
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    rss_mib: float = 0.0
    version_change: str = ""

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else 0.0


def build_repository(folder: Path) -> Path:
    """Two versions of the winner the built-in data selects, as `make run` exports it."""
    from santander.export import export_version
    from santander.training.candidates import get_family
    from santander.training.data.synthetic import generate
    repository = folder / "deploy"
    for seed in (1, 2):
        frame = generate(5_000, seed=seed)
        X, y = frame.filter(like="var_").to_numpy(np.float32), frame["target"].to_numpy()
        export_version(get_family("histogram_nb").build().fit(X, y), "additive", 0.5,
                       {"family": "histogram_nb"}, repository)
    return repository


def write_bodies(folder: Path, rows: int = 64) -> None:
    from santander.training.data.synthetic import generate
    X = generate(rows, seed=3).filter(like="var_").to_numpy(np.float32)
    for i, row in enumerate(X):
        (folder / f"valid-{i}.json").write_bytes(rest_body(row[None, :]))
    (folder / "invalid.json").write_bytes(json.dumps({"inputs": [{
        "name": "features", "shape": [1, 199], "datatype": "FP32",
        "data": X[0, :199].tolist()}]}).encode())


def run_part(url: str, folder: Path, seconds: int, seed: int) -> Part:
    out = folder / "part.txt"
    env = {**os.environ, "SOAK_DIR": str(folder), "SOAK_BODIES": "64", "BENCH_OUT": str(out),
           "SOAK_SEED": str(seed), "SOAK_INVALID_SHARE": str(INVALID_SHARE)}
    (folder / "soak.lua").write_text(_SCRIPT)
    subprocess.run(["wrk", "-t1", f"-c{CALLERS}", f"-d{seconds}s", "--timeout", "10s",
                    "-s", str(folder / "soak.lua"), f"{url}/v2/models/{MODEL_NAME}/infer"],
                   env=env, check=True, capture_output=True, timeout=seconds + 60)
    measured = read_wrk_result(out)
    ok, refused, failed, *failures = measured.own_line.split(" ", 3)
    return Part(seconds=seconds, ok=int(ok), refused=int(refused), failed=int(failed),
                socket_errors=sum(v for k, v in measured.errors.items() if k != "status"),
                first_failures=" ".join(failures), latencies_ms=measured.latencies_ms)


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        import psutil
        while not self.stopping.wait(1.0):
            total = 0
            for process in (self.process, *self.process.children(recursive=True)):
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.samples.append((time.monotonic(), total / 2**20))

    def latest(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0


def change_version(repository: Path, url: str, part: int) -> str:
    """On odd parts, make version 1 the default and retire 2; on even ones, promote 2 back
    (serving it again, as the default)."""
    from santander.ops.versions import promote, retire
    from santander.v2_client import V2Client
    client = V2Client(url, timeout=300)
    if part % 2:
        promote(repository, 1, client=client)
        _, served = retire(repository, 2, client=client)
        return f"default 1, retired 2 (serving {served})"
    _, served = promote(repository, 2, client=client)
    return f"promoted 2 (serving {served})"


LOG_WAYS = {"on": None, "off": "off"}        # SANTANDER_LOG_URL: unset (the SQLite default)


def run(smoke: bool, out: Path) -> dict:
    ensure_installed()
    parts_seconds = [6, 6] if smoke else [60] * 10
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {LOAD_CORE})
    runs, summaries = {}, {}
    for way, url in LOG_WAYS.items():
        runs[way], log = soak(parts_seconds, url)
        summaries[way] = {**summarise(runs[way]), **log}
    write_section(out, "soak", render(runs, summaries, smoke))
    return summaries


def soak(parts_seconds: list[int], log_url: str | None) -> tuple[list[Part], dict]:
    """One soak with the log as `log_url` says; its parts, and the log's written and dropped
    rows beside the valid answers."""
    from bench.load import metrics_counter, wait_until_logged
    from santander.ops.launcher import running_server
    from santander.prediction_log.tables import LOG_URL_ENV
    previous = os.environ.pop(LOG_URL_ENV, None)
    if log_url is not None:
        os.environ[LOG_URL_ENV] = log_url
    try:
        with tempfile.TemporaryDirectory(prefix="santander-soak-") as tmp:
            folder = Path(tmp)
            repository = build_repository(folder)
            write_bodies(folder)
            with running_server(repository, folder / "server") as server:
                if os.cpu_count() > 1:
                    os.sched_setaffinity(server.process.pid, {SERVER_CORE})
                sampler = RssSampler(server.process.pid)
                sampler.start()
                parts = [run_one_part(server, repository, folder, k, seconds, sampler)
                         for k, seconds in enumerate(parts_seconds)]
                sampler.stopping.set()
                wait_until_logged(server.metrics_url)
                log = {kind: metrics_counter(server.metrics_url,
                                             f"santander_log_{kind}_rows_total")
                       for kind in ("written", "dropped")}
                # The rows the runtime answered, by its own count: wrk's leaves out the
                # answers still in flight when each part ends.
                log["scored"] = metrics_counter(server.metrics_url, "santander_scored_rows_total")
    finally:
        os.environ.pop(LOG_URL_ENV, None)
        if previous is not None:
            os.environ[LOG_URL_ENV] = previous
    return parts, log


def run_one_part(server, repository: Path, folder: Path, k: int, seconds: int,
                 sampler: RssSampler) -> Part:
    # The version change lands in the middle of the part, under load.
    changed = {}
    timer = threading.Timer(seconds / 2, lambda: changed.setdefault(
        "what", change_version(repository, server.http_url, k + 1)))
    timer.start()
    part = run_part(server.http_url, folder, seconds, seed=k + 1)
    timer.join()
    part.rss_mib = sampler.latest()
    part.version_change = changed.get("what", "")
    print(f"part {k + 1}: ok {part.ok} refused {part.refused} failed {part.failed} "
          f"p99 {part.p(99):.1f} ms RSS {part.rss_mib:.0f} MiB {part.version_change}",
          flush=True)
    return part


def summarise(parts: list[Part]) -> dict:
    warm = parts[0].rss_mib
    return {
        "requests": sum(p.ok + p.refused + p.failed for p in parts),
        "valid": sum(p.ok for p in parts),
        "failed": sum(p.failed + p.socket_errors for p in parts),
        "invalid_share": sum(p.refused for p in parts) / max(1, sum(p.ok + p.refused
                                                                     for p in parts)),
        "rss_growth": (parts[-1].rss_mib - warm) / warm if warm else float("nan"),
        "p99_last_vs_first": parts[-1].p(99) / parts[0].p(99) if parts[0].p(99) else float("nan"),
    }


def render(runs: dict[str, list[Part]], summaries: dict[str, dict], smoke: bool) -> str:
    minutes = sum(p.seconds for p in runs["on"]) / 60
    lines = ["## Soak", "", f"Measured on {machine()}." + (
        " **Smoke run (two parts of 6 s each way): figures are not meaningful.**"
        if smoke else ""),
        f"{minutes:g} minutes of `wrk` at {CALLERS} concurrent callers (core 1) against this "
        f"project's deployment (core 0) serving two versions of the built-in winner, once with "
        f"the prediction log on (every row, SQLite) and once with it off; {INVALID_SHARE:.0%} "
        "of requests invalid; in the middle of every part the default moves to version 1 and "
        "version 2 is retired, or 2 is promoted back as the default. RSS: the server and its "
        "children. `python -m bench.soak` reproduces it.", ""]
    for way, parts in runs.items():
        lines += [f"Log {way}:", "",
                  "| part | valid answered | invalid refused (400) | failed | p50 / p99 | RSS "
                  "at its end | version change |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for k, p in enumerate(parts, 1):
            failed = f"{p.failed + p.socket_errors}" + (f" ({p.first_failures[:120]})"
                                                         if p.failed else "")
            lines.append(f"| {k} | {p.ok:,} | {p.refused:,} | {failed} | {p.p(50):.1f} / "
                         f"{p.p(99):.1f} ms | {p.rss_mib:.0f} MiB | {p.version_change} |")
        lines.append("")
    lines += ["| target | measured | |", "| --- | --- | --- |"]
    for way, s in summaries.items():
        lines += [f"| log {way}: no failed request (valid ones answered, invalid ones a 400) | "
                  f"{s['failed']} of {s['requests']:,} | "
                  f"{verdict(s['failed'] == 0 and s['requests'] > 0)} |",
                  f"| log {way}: RSS growth after the first part ≤ 10% | "
                  f"{s['rss_growth']:+.1%} | {verdict(s['rss_growth'] <= 0.10)} |",
                  f"| log {way}: last part's p99 ≤ 1.5× the first's | "
                  f"{s['p99_last_vs_first']:.2f}× | {verdict(s['p99_last_vs_first'] <= 1.5)} |"]
    on = summaries["on"]
    accounted = on["written"] + on["dropped"]
    lines.append(f"| log on: nothing lost but what is counted (every valid answer's row "
                 f"written or counted dropped) | {on['written']:,.0f} written + "
                 f"{on['dropped']:,.0f} dropped of {on['scored']:,.0f} answered (the server's "
                 f"count) | {verdict(accounted == on['scored'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = cli(__doc__, "two parts of 6 s each way, to keep it working").parse_args(argv)
    print(json.dumps(run(args.smoke, Path(args.out)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
