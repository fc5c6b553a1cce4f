"""Concurrent load from C load generators: `wrk` for REST, `h2load` for gRPC.

A Python client on one core tops out near 1,100-1,500 requests per second, about what the
servers under test answer, so its concurrent figures measure the client as much as the server.
wrk and h2load (Debian packages `wrk` and `nghttp2-client`, installed here if missing) do not.
Both run one thread, on the load core this process is pinned to, after a warm-up, and every
request's latency is kept, so rounds pool exactly as `bench.load` pools its own. Each answers a `LoadResult`, like `bench.load.concurrent`.

- REST: `wrk` with C connections, each one request in flight (HTTP/1.1 cannot multiplex). A
  Lua script posts the JSON body and writes wrk's latency histogram (µs, count) and error
  counts to a file when done. Non-2xx answers, and failed or timed-out sockets, are errors.
- gRPC: `h2load` on one HTTP/2 connection with C streams in flight, as one `grpc.aio` channel
  is used; it posts the same `ModelInferRequest` frame a set number of times (about the
  measuring time's worth) and logs each request's status and latency. h2load reads HTTP
  statuses, not gRPC trailers, so the frame is first sent once through grpcio and must get
  status OK (`check_grpc_frame`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.load import LoadResult, grpc_request, rest_body
from santander.config import MODEL_NAME

PACKAGES = {"wrk": "wrk", "h2load": "nghttp2-client"}

# For a wrk script's done(): the summary, one line of the script's own, and wrk's whole latency
# histogram (µs, count), into the file BENCH_OUT names (`read_wrk_result` reads it).
WRK_RESULT_LUA = """
function write_result(summary, latency, own_line)
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  local e = summary.errors
  out:write(string.format("%d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
                          e.connect, e.read, e.write, e.status, e.timeout))
  out:write((own_line:gsub("\\n", " ")) .. "\\n")
  for i = 1, #latency do
    local value, count = latency(i)
    out:write(string.format("%d %d\\n", value, count))
  end
  out:close()
end
"""

_WRK_SCRIPT = WRK_RESULT_LUA + """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local body_file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = body_file:read("*a")
body_file:close()

done = function(summary, latency, requests)
  write_result(summary, latency, "")
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]      # connect, read, write, status (non-2xx), timeout
    own_line: str
    latencies_ms: np.ndarray    # every answer's, non-2xx ones too


def read_wrk_result(path: Path) -> WrkResult:
    lines = path.read_text().split("\n")
    requests, duration_us, *errors = map(int, lines[0].split())
    histogram = np.array([list(map(int, line.split())) for line in lines[2:] if line],
                         dtype=np.int64).reshape(-1, 2)
    return WrkResult(requests=requests, seconds=duration_us / 1e6,
                     errors=dict(zip(("connect", "read", "write", "status", "timeout"), errors)),
                     own_line=lines[1],
                     latencies_ms=np.repeat(histogram[:, 0] / 1000, histogram[:, 1]))


def ensure_installed() -> None:
    """Install wrk and h2load from Debian if either is missing (root, or sudo, needed)."""
    missing = [PACKAGES[tool] for tool in PACKAGES if shutil.which(tool) is None]
    if not missing:
        return
    root = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        done = subprocess.run(root + command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cannot install {' '.join(missing)} ({' '.join(command)}): "
                               f"{done.stderr.strip()[-500:]}")


def _seconds(value: float) -> str:
    # wrk takes whole seconds.
    return f"{max(1, round(value))}s"


def wrk_concurrent(url: str, rows: np.ndarray, connections: int, seconds: float,
                   warmup_seconds: float, model: str = MODEL_NAME,
                   version: str | None = None) -> LoadResult:
    """`connections` callers posting `rows` to the model (or one version of it)."""
    path = f"{model}/versions/{version}" if version else model
    target = f"{url.rstrip('/')}/v2/models/{path}/infer"
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        folder = Path(tmp)
        (folder / "body.json").write_bytes(rest_body(rows))
        (folder / "post.lua").write_text(_WRK_SCRIPT)
        env = {**os.environ, "BENCH_BODY": str(folder / "body.json"),
               "BENCH_OUT": str(folder / "out.txt")}

        def wrk(duration: float) -> None:
            subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{_seconds(duration)}",
                            "--timeout", "10s", "-s", str(folder / "post.lua"), target],
                           env=env, check=True, capture_output=True, timeout=duration + 60)

        if warmup_seconds > 0:
            wrk(warmup_seconds)
        wrk(seconds)
        measured = read_wrk_result(folder / "out.txt")
    # wrk's histogram holds every answer's latency, non-2xx ones too: a row with errors is
    # reported as such, not as a measurement.
    result = LoadResult(latencies_ms=list(measured.latencies_ms),
                        errors=sum(measured.errors.values()), seconds=measured.seconds)
    if result.errors:
        result.first_error = "wrk: " + ", ".join(f"{k} {v}" for k, v in measured.errors.items())
    return result


def check_grpc_frame(address: str, request_bytes: bytes) -> None:
    """The exact bytes h2load will post get gRPC status OK (h2load cannot read the status)."""
    import grpc
    with grpc.insecure_channel(address) as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=None, response_deserializer=None)
        infer(request_bytes, timeout=30)     # raises grpc.RpcError unless OK


def h2load_concurrent(address: str, rows: np.ndarray, streams: int, seconds: float,
                      warmup_seconds: float, model: str = MODEL_NAME) -> LoadResult:
    message = grpc_request(rows, model).SerializeToString()
    check_grpc_frame(address, message)
    # gRPC's length-prefixed message: no compression flag, 4-byte big-endian length.
    frame = b"\x00" + len(message).to_bytes(4, "big") + message
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp:
        folder = Path(tmp)
        (folder / "frame.bin").write_bytes(frame)

        def h2load(requests: int) -> tuple[np.ndarray, int]:
            """(start µs, HTTP status, µs to the end of the response) per request, and the
            requests h2load counts as failed without a status."""
            log = folder / "requests.tsv"
            log.unlink(missing_ok=True)
            done = subprocess.run(
                ["h2load", "-t1", "-c1", f"-m{streams}", f"-n{requests}",
                 "-d", str(folder / "frame.bin"), "-H", "content-type: application/grpc",
                 "-H", "te: trailers", f"--log-file={log}",
                 f"http://{address}/inference.GRPCInferenceService/ModelInfer"],
                capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"h2load failed: {done.stderr.strip()[-500:]}")
            logged = np.loadtxt(log, dtype=np.int64, ndmin=2) if log.stat().st_size else \
                np.empty((0, 3), dtype=np.int64)
            return logged, _h2load_failures(done.stdout)

        # A fixed number of requests, not a fixed time: h2load's duration mode cancels the
        # streams in flight when the time is up, and stock MLServer's adaptive batcher does
        # not survive cancelled callers (KeyError in AdaptiveBatcher._predict_callback; the
        # rest of that batch never gets its answer). The warm-up sets the count.
        warm, _ = h2load(streams * 20)
        warm_span_s = max(1e-3, float((warm[:, 0] + warm[:, 2]).max() - warm[:, 0].min()) / 1e6)
        rate = len(warm) / warm_span_s
        extra = max(0, int(rate * warmup_seconds) - len(warm))
        if extra:
            h2load(extra)
        logged, failed = h2load(max(streams * 10, int(rate * seconds)))
    ok = logged[:, 1] == 200
    span_s = float((logged[:, 0] + logged[:, 2]).max() - logged[:, 0].min()) / 1e6
    result = LoadResult(latencies_ms=list(logged[ok, 2] / 1000),
                        errors=int((~ok).sum()) + failed, seconds=span_s)
    if result.errors:
        result.first_error = f"h2load: {int((~ok).sum())} non-200, {failed} without an answer"
    return result


def _h2load_failures(stdout: str) -> int:
    """Requests h2load counts as failed or errored (no HTTP status to log)."""
    for line in stdout.splitlines():
        if line.startswith("requests:"):
            # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
            counts = {part.split()[1]: int(part.split()[0])
                      for part in line.removeprefix("requests:").split(",")}
            return counts.get("errored", 0) + counts.get("timeout", 0) + max(
                0, counts.get("failed", 0) - counts.get("errored", 0))
    return 0


if __name__ == "__main__":      # python -m bench.c_load: install the tools, print their versions
    ensure_installed()
    print(json.dumps({tool: shutil.which(tool) for tool in PACKAGES}))
