"""A closed-loop load generator for V2 servers: REST (aiohttp) and gRPC (grpc.aio).

Every request carries one row (200 FP32 features). `sequential` sends one request at a time;
`concurrent` keeps C requests in flight for a fixed time. Both return a `LoadResult`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np

MODEL = "xgboost-model"


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


def rest_body(row: np.ndarray) -> bytes:
    return json.dumps({"inputs": [{"name": "features", "shape": [1, row.size],
                                   "datatype": "FP32", "data": row.tolist()}]}).encode()


class RestCaller:
    def __init__(self, url: str, row: np.ndarray, model: str = MODEL):
        self.url = f"{url.rstrip('/')}/v2/models/{model}/infer"
        self.body = rest_body(row)
        self.session = None

    async def __aenter__(self):
        import aiohttp
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            headers={"Content-Type": "application/json"})
        return self

    async def __aexit__(self, *exc):
        await self.session.close()

    async def call(self) -> str | None:
        async with self.session.post(self.url, data=self.body) as response:
            text = await response.read()
            return None if response.status == 200 else f"HTTP {response.status} {text[:200]!r}"


class GrpcCaller:
    def __init__(self, address: str, row: np.ndarray, model: str = MODEL):
        from mlserver.grpc import dataplane_pb2 as pb
        self.address = address
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP32", shape=[1, row.size],
            contents=pb.InferTensorContents(fp32_contents=row.tolist()))
        self.request = pb.ModelInferRequest(model_name=model, inputs=[tensor])
        self.channel = None

    async def __aenter__(self):
        import grpc
        from mlserver.grpc import dataplane_pb2_grpc as rpc
        self.channel = grpc.aio.insecure_channel(self.address)
        self.stub = rpc.GRPCInferenceServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc):
        await self.channel.close()

    async def call(self) -> str | None:
        import grpc
        try:
            await self.stub.ModelInfer(self.request, timeout=30)
        except grpc.aio.AioRpcError as exc:
            return f"gRPC {exc.code().name} {exc.details()[:200]}"
        return None


async def _timed(caller, result: LoadResult) -> None:
    start = time.perf_counter()
    try:
        error = await caller.call()
    except Exception as exc:          # a refused or dropped connection is an error too
        error = f"{type(exc).__name__}: {exc}"
    if error is None:
        result.latencies_ms.append((time.perf_counter() - start) * 1000)
    else:
        result.errors += 1
        result.first_error = result.first_error or error


async def sequential(make_caller, requests: int, warmup: int = 20) -> LoadResult:
    async with make_caller() as caller:
        for _ in range(warmup):
            await caller.call()
        result = LoadResult()
        start = time.perf_counter()
        for _ in range(requests):
            await _timed(caller, result)
        result.seconds = time.perf_counter() - start
    return result


async def concurrent(make_caller, callers: int, seconds: float,
                     warmup_seconds: float = 1.0) -> LoadResult:
    async with make_caller() as caller:
        result = LoadResult()
        measuring = False
        stop_at = time.perf_counter() + warmup_seconds + seconds

        async def worker():
            while time.perf_counter() < stop_at:
                await _timed(caller, result if measuring else LoadResult())

        tasks = [asyncio.create_task(worker()) for _ in range(callers)]
        await asyncio.sleep(warmup_seconds)
        measuring = True
        start = time.perf_counter()
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - start
    return result
