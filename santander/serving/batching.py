"""Adaptive batching of rows inside the runtime: requests that arrive together are scored together.

MLServer's own batcher queues whole V2 requests, merges them into one `InferenceRequest` and
splits the `InferenceResponse` back, building pydantic objects at every step. On one core
that costs more per request than the model itself (`bench/serving.py` compares this
deployment with MLServer's stock batching; BENCHMARKS.md has the figures). Here the runtime
checks and decodes each request on its own first (a bad request fails alone, before it can
join a batch), and only the decoded rows wait: one model call per batch, and each caller
gets its own slice of the answer.

The settings and their meaning are MLServer's (`model-settings.json`): a batch closes when
it holds `max_batch_size` requests, or `max_batch_time` seconds after its first request
arrived; `max_batch_size` ≤ 1 or `max_batch_time` ≤ 0 means no batching. The model runs on
the event loop, as MLServer's batcher runs it with `parallel_workers` 0.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import numpy as np


def positive_scores(model, X: np.ndarray) -> np.ndarray:
    """The positive class's probability for each row: what a RowBatcher scores with."""
    return model.predict_proba(X)[:, 1]


class RowBatcher:
    def __init__(self, score: Callable[[np.ndarray], np.ndarray], max_batch_size: int,
                 max_batch_time: float, on_batch: Callable[[int], None] = lambda rows: None):
        self._score = score
        self._max_batch_size = max_batch_size
        self._max_batch_time = max_batch_time
        self._on_batch = on_batch
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.enabled = max_batch_size > 1 and max_batch_time > 0

    async def score(self, X: np.ndarray) -> np.ndarray:
        """The model's scores for these rows, computed in one batch with whoever came along."""
        if not self.enabled:
            self._on_batch(len(X))
            return self._score(X)
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self._pending.append((X, answer))
        if len(self._pending) >= self._max_batch_size:
            self._close_batch()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_batch_time, self._close_batch)
        return await answer

    def _close_batch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        rows = batch[0][0] if len(batch) == 1 else np.concatenate([X for X, _ in batch])
        try:
            self._on_batch(len(rows))
            scores = self._score(rows)
        except Exception as exc:          # every caller of this batch gets the error, none hangs
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        start = 0
        for X, answer in batch:
            if not answer.done():         # a caller that went away (cancelled) is skipped
                answer.set_result(scores[start:start + len(X)])
            start += len(X)
