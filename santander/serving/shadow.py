"""Shadow scoring: another version scores the default's requests, and only the log sees it.

`santander shadow N` puts version N's artifact on the repository's entry for the default
(santander/serving/repository.py), so the runtime serving the default loads it beside its own
model. A share of the default's logged requests is then scored by N too, with the same request
id and rows, after the default's answer is on its way: the shadow's probability and label go
to the prediction log and nowhere else, and a shadow that fails costs a log line, never an
answer. Its rows are batched like the default's, so scoring many small requests is one call.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from functools import partial
from pathlib import Path

import numpy as np

from santander.loader import load_served
from santander.prediction_log.writer import LogWriter, Scored, now
from santander.serving.batching import RowBatcher, positive_scores

logger = logging.getLogger("mlserver")


class Shadow:
    """Version `version` scoring a share `rate` of the requests it is handed."""

    def __init__(self, spec: dict, max_batch_size: int, max_batch_time: float):
        self.version, self.rate = str(spec["version"]), float(spec["rate"])
        model, self.threshold = load_served(Path(spec["uri"]), spec["extra"],
                                            f"shadow version {self.version}")
        self._batches = RowBatcher(partial(positive_scores, model), max_batch_size,
                                   max_batch_time)
        self._running: set[asyncio.Task] = set()

    def follow(self, log: LogWriter, model_name: str, request_id: str | None,
               id_codes: list[str] | None, X: np.ndarray) -> None:
        """Score these rows in the background (or not, by the rate) and log them."""
        if self.rate < 1.0 and random.random() >= self.rate:
            return
        task = asyncio.ensure_future(self._score(log, model_name, request_id, id_codes, X))
        self._running.add(task)                 # the loop keeps only a weak reference
        task.add_done_callback(self._running.discard)

    async def _score(self, log: LogWriter, model_name: str, request_id: str | None,
                     id_codes: list[str] | None, X: np.ndarray) -> None:
        started = time.perf_counter()
        try:
            proba = await self._batches.score(X)
        except Exception as exc:                # the default has answered; only say it
            logger.error(f"shadow version {self.version} could not score request "
                         f"{request_id}: {exc}")
            return
        log.submit(Scored(now(), request_id, id_codes, model_name, self.version, X, proba,
                          self.threshold, (time.perf_counter() - started) * 1000))
