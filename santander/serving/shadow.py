"""Shadow scoring: another version scores the default's requests, and only the log sees it.

`santander shadow N` puts version N's artifact on the repository's entry for the default
(santander/serving/repository.py), so the runtime serving the default loads it beside its own
model. A share of the default's logged requests is then scored by N too, with the same request
id and rows, after the default's answer is on its way: the shadow's probability and label go
to the prediction log and nowhere else, and a shadow that fails costs a log line, never an
answer.

Cheap by construction, since it runs on the serving core: a request only appends its rows to a
list; one callback per turn of the event loop scores everything appended meanwhile in one model
call (the default's batches finish many requests in the same turn) and hands each request's
rows to the log. No task or future per request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

import numpy as np

from santander.loader import load_served
from santander.prediction_log.writer import LogWriter, Scored, now
from santander.serving.batching import positive_scores

logger = logging.getLogger("mlserver")


class Shadow:
    """Version `version` scoring a share `rate` of the requests it is handed, into `log`."""

    def __init__(self, spec: dict, log: LogWriter, model_name: str):
        self.version, self.rate = str(spec["version"]), float(spec["rate"])
        self._model, self.threshold = load_served(Path(spec["uri"]), spec["extra"],
                                                  f"shadow version {self.version}")
        self._log, self._model_name = log, model_name
        self._pending: list[tuple[float, str | None, list[str] | None, np.ndarray]] = []

    def follow(self, request_id: str | None, id_codes: list[str] | None,
               X: np.ndarray) -> None:
        """Score these rows soon (or not, by the rate) and log them; returns at once."""
        if self.rate < 1.0 and random.random() >= self.rate:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._score_pending)
        self._pending.append((time.perf_counter(), request_id, id_codes, X))

    def _score_pending(self) -> None:
        pending, self._pending = self._pending, []
        try:
            proba = positive_scores(self._model, np.concatenate([X for *_, X in pending]))
        except Exception as exc:                # the default has answered; only say it
            logger.error(f"shadow version {self.version} could not score {len(pending)} "
                         f"request(s): {exc}")
            return
        done, start = time.perf_counter(), 0
        for queued, request_id, id_codes, X in pending:
            # No features: the default's row of the same request holds them (readers join).
            self._log.submit(Scored(now(), request_id, id_codes, self._model_name, self.version,
                                    None, proba[start:start + len(X)], self.threshold,
                                    (done - queued) * 1000))
            start += len(X)
