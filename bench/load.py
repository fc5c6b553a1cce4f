"""Sequential load for V2 servers, REST and gRPC, from Python.

Every request carries the same rows (one, unless the caller is given more; 200 FP32 features
each). `sequential` is one blocking caller sending one request at a time (http.client with
keep-alive, or a gRPC stub): the lightest client each protocol has in Python, so its latency
is mostly the server's. It returns a `LoadResult`. Concurrent load comes from C load
generators (`bench/c_load.py`), which a Python client on one core cannot match.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from santander.config import MODEL_NAME as MODEL


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    first_error: str = ""

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def add(self, other: LoadResult) -> None:
        """Pool another measurement of the same thing (rounds of one benchmark)."""
        self.latencies_ms += other.latencies_ms
        self.errors += other.errors
        self.seconds += other.seconds
        self.first_error = self.first_error or other.first_error

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def metrics_counter(metrics_url: str, name: str, **labels: str) -> float:
    """The sum of a counter's samples on a server's metrics port that carry `labels` (0 if it
    has none)."""
    import urllib.request
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if (line.startswith(name + "{") or line.startswith(name + " "))
               and all(label in line for label in wanted))


def wait_until_logged(metrics_url: str, timeout: float = 120.0) -> float:
    """Wait until the server's prediction log has written or dropped every row it was handed
    (nothing queued, twice in a row); the seconds it took."""
    start = time.monotonic()
    settled = 0
    while time.monotonic() - start < timeout and settled < 2:
        queued = metrics_counter(metrics_url, "santander_log_queued_rows")
        settled = settled + 1 if queued == 0 else 0
        time.sleep(0.1 if settled else 0.25)
    return time.monotonic() - start


def rest_body(rows: np.ndarray) -> bytes:
    rows = np.atleast_2d(rows)
    return json.dumps({"inputs": [{"name": "features", "shape": list(rows.shape),
                                   "datatype": "FP32", "data": rows.ravel().tolist()}]}).encode()


def grpc_request(rows: np.ndarray, model: str = MODEL):
    """The tensor as raw little-endian bytes (`raw_input_contents`), as Triton's client sends
    it: the protocol's binary form, where REST has only JSON."""
    from mlserver.grpc import dataplane_pb2 as pb
    rows = np.atleast_2d(rows)
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="features", datatype="FP32", shape=list(rows.shape))
    return pb.ModelInferRequest(
        model_name=model, inputs=[tensor],
        raw_input_contents=[np.ascontiguousarray(rows, dtype="<f4").tobytes()])


class BlockingRestCaller:
    def __init__(self, url: str, rows: np.ndarray, model: str = MODEL):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path = f"/v2/models/{model}/infer"
        self.body = rest_body(rows)

    def __enter__(self):
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return self

    def __exit__(self, *exc):
        self.connection.close()

    def call(self) -> str | None:
        self.connection.request("POST", self.path, self.body,
                                {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        text = response.read()
        return None if response.status == 200 else f"HTTP {response.status} {text[:200]!r}"


class BlockingGrpcCaller:
    def __init__(self, address: str, rows: np.ndarray, model: str = MODEL):
        self.address = address
        self.request = grpc_request(rows, model)

    def __enter__(self):
        import grpc
        from mlserver.grpc import dataplane_pb2_grpc as rpc
        self.channel = grpc.insecure_channel(self.address)
        self.stub = rpc.GRPCInferenceServiceStub(self.channel)
        return self

    def __exit__(self, *exc):
        self.channel.close()

    def call(self) -> str | None:
        import grpc
        try:
            self.stub.ModelInfer(self.request, timeout=30)
        except grpc.RpcError as exc:
            return f"gRPC {exc.code().name} {exc.details()[:200]}"
        return None


@contextlib.contextmanager
def _timed(result: LoadResult):
    """Times one call; the body sets `outcome.error` (None: success)."""
    outcome = SimpleNamespace(error=None)
    began = time.perf_counter()
    try:
        yield outcome
    except Exception as exc:          # a refused or dropped connection is an error too
        outcome.error = f"{type(exc).__name__}: {exc}"
    if outcome.error is None:
        result.latencies_ms.append((time.perf_counter() - began) * 1000)
    else:
        result.errors += 1
        result.first_error = result.first_error or outcome.error


def sequential(make_caller, requests: int, warmup: int = 20) -> LoadResult:
    """One request at a time from a blocking caller (BlockingRestCaller, BlockingGrpcCaller)."""
    with make_caller() as caller:
        for _ in range(warmup):
            caller.call()
        result = LoadResult()
        start = time.perf_counter()
        for _ in range(requests):
            with _timed(result) as outcome:
                outcome.error = caller.call()
        result.seconds = time.perf_counter() - start
    return result
