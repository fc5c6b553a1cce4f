"""Soak: a served model under steady load for minutes, with bad requests mixed in and its
versions changing under it, written to BENCHMARKS.md.

    python -m bench.soak                  # 10 minutes at 16 concurrent callers
    python -m bench.soak --smoke --out /tmp/B.md    # three parts of 8 s (CI)

`wrk` (one thread, 16 connections, pinned to core 1; the server to core 0) sends V2 requests
for the repository's two versions of the built-in winner: 95% valid, one row each, and 5%
invalid (199 features). A Lua script classifies every answer: 200 for a valid request, a 400
naming the shape for an invalid one; anything else is a failed request. Once a minute the
newest version is retired or promoted again (`santander.ops.versions`), so the endpoint
moves between versions while the load runs. The server's RSS is sampled every second.

Targets: no failed request; RSS growth after the first minute (warm-up) ≤ 10%; the last
minute's p99 ≤ 1.5× the first minute's.
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
        while not self.stopping.wait(1.0):
            self.samples.append((time.monotonic(), self.process.memory_info().rss / 2**20))

    def latest(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0


def change_version(repository: Path, url: str, part: int) -> str:
    """Retire the newest version on odd parts, promote it back on even ones."""
    from santander.ops.versions import AdminClient, promote, retire
    client = AdminClient(url)
    if part % 2:
        _, served = retire(repository, 2, client=client)
        return f"retired 2 (serving {served})"
    _, served = promote(repository, 2, client=client)
    return f"promoted 2 (serving {served})"


def run(smoke: bool, out: Path) -> dict:
    from santander.ops.launcher import running_server
    ensure_installed()
    parts_seconds = [8, 8, 8] if smoke else [60] * 10
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {LOAD_CORE})
    with tempfile.TemporaryDirectory(prefix="santander-soak-") as tmp:
        folder = Path(tmp)
        repository = build_repository(folder)
        write_bodies(folder)
        with running_server(repository, folder / "server") as server:
            if os.cpu_count() > 1:
                os.sched_setaffinity(server.process.pid, {SERVER_CORE})
            sampler = RssSampler(server.process.pid)
            sampler.start()
            parts = []
            for k, seconds in enumerate(parts_seconds):
                # The version change lands in the middle of the part, under load.
                changed = {}
                timer = threading.Timer(seconds / 2, lambda k=k: changed.setdefault(
                    "what", change_version(repository, server.http_url, k + 1)))
                timer.start()
                part = run_part(server.http_url, folder, seconds, seed=k + 1)
                timer.join()
                part.rss_mib = sampler.latest()
                part.version_change = changed.get("what", "")
                parts.append(part)
                print(f"part {k + 1}/{len(parts_seconds)}: ok {part.ok} refused {part.refused} "
                      f"failed {part.failed} p99 {part.p(99):.1f} ms RSS {part.rss_mib:.0f} MiB "
                      f"{part.version_change}", flush=True)
            sampler.stopping.set()
    summary = summarise(parts)
    write_section(out, "soak", render(parts, summary, smoke))
    return summary


def summarise(parts: list[Part]) -> dict:
    warm = parts[0].rss_mib
    return {
        "requests": sum(p.ok + p.refused + p.failed for p in parts),
        "failed": sum(p.failed + p.socket_errors for p in parts),
        "invalid_share": sum(p.refused for p in parts) / max(1, sum(p.ok + p.refused
                                                                     for p in parts)),
        "rss_growth": (parts[-1].rss_mib - warm) / warm if warm else float("nan"),
        "p99_last_vs_first": parts[-1].p(99) / parts[0].p(99) if parts[0].p(99) else float("nan"),
    }


def render(parts: list[Part], summary: dict, smoke: bool) -> str:
    minutes = sum(p.seconds for p in parts) / 60
    lines = ["## Soak", "", f"Measured on {machine()}." + (
        " **Smoke run (three parts of 8 s): figures are not meaningful.**" if smoke else ""),
        f"{minutes:g} minutes of `wrk` at {CALLERS} concurrent callers (core 1) against this "
        f"project's deployment (core 0) serving two versions of the built-in winner; "
        f"{INVALID_SHARE:.0%} of requests invalid; the newest version retired or promoted in "
        "the middle of every part. `python -m bench.soak` reproduces it.", "",
        "| part | valid answered | invalid refused (400) | failed | p50 / p99 | server RSS "
        "at its end | version change |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for k, p in enumerate(parts, 1):
        failed = f"{p.failed + p.socket_errors}" + (f" ({p.first_failures[:120]})"
                                                     if p.failed else "")
        lines.append(f"| {k} | {p.ok:,} | {p.refused:,} | {failed} | {p.p(50):.1f} / "
                     f"{p.p(99):.1f} ms | {p.rss_mib:.0f} MiB | {p.version_change} |")
    s = summary
    lines += ["", "| target | measured | |", "| --- | --- | --- |",
              f"| no failed request (valid ones answered, invalid ones a 400) | "
              f"{s['failed']} of {s['requests']:,} | "
              f"{verdict(s['failed'] == 0 and s['requests'] > 0)} |",
              f"| server RSS growth after the first part ≤ 10% | {s['rss_growth']:+.1%} | "
              f"{verdict(s['rss_growth'] <= 0.10)} |",
              f"| last part's p99 ≤ 1.5× the first's | {s['p99_last_vs_first']:.2f}× | "
              f"{verdict(s['p99_last_vs_first'] <= 1.5)} |"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = cli(__doc__, "1 minute in three parts, to keep it working").parse_args(argv)
    print(json.dumps(run(args.smoke, Path(args.out)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
