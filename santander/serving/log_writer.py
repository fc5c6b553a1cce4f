"""The prediction log's writer: every scored row, written off the event loop in batches.

The runtime hands over one `Scored` per answered request (`submit`: a lock, an append and a
count, nothing more on the request path). A thread of its own turns them into rows and
inserts them in one transaction per batch, so a row is in the log whole or not at all. A slow
or unreachable database costs records, never answers: the queue is bounded in rows, what does
not fit is dropped, and so is a batch the database refuses. Dropped rows are counted
(`santander_log_dropped_rows_total{reason}` on the metrics port) and reported in one warning
line a minute at most.

What a SIGKILL loses: the rows queued and not yet committed, at most `max_queued_rows`
(rows stay counted as queued until their batch commits). A normal stop (SIGTERM) flushes.

One writer per log URL per process, shared by every version the process serves
(`writer_for`): one connection pool, and SQLite sees one writer.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from santander.config import LOG_BATCH_ROWS, LOG_FLUSH_SECONDS, LOG_QUEUE_ROWS
from santander.prediction_log import connect, features_blob, predictions
from santander.serving.metrics import LOG_DROPPED_ROWS, LOG_WRITTEN_ROWS

logger = logging.getLogger("santander.prediction_log")
WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Scored:
    """One answered request, as the runtime saw it."""
    logged_at: datetime
    request_id: str | None
    id_codes: list[str] | None
    model_name: str
    model_version: str
    features: np.ndarray        # (n, 200) float32
    probability: np.ndarray     # (n,)
    threshold: float
    latency_ms: float

    def rows(self) -> list[dict]:
        labels = (self.probability >= self.threshold).tolist()
        ids = self.id_codes or [None] * len(self.probability)
        common = {"logged_at": self.logged_at, "request_id": self.request_id,
                  "model_name": self.model_name, "model_version": self.model_version,
                  "threshold": self.threshold, "latency_ms": self.latency_ms}
        return [{**common, "row_index": i, "id_code": ids[i],
                 "features": features_blob(self.features[i]),
                 "probability": float(p), "label": int(labels[i])}
                for i, p in enumerate(self.probability.tolist())]


def now() -> datetime:
    return datetime.now(timezone.utc)


class LogWriter:
    def __init__(self, url: str, max_queued_rows: int = LOG_QUEUE_ROWS,
                 batch_rows: int = LOG_BATCH_ROWS, flush_seconds: float = LOG_FLUSH_SECONDS):
        self.url = url
        self.max_queued_rows = max_queued_rows
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self._queue: deque[Scored] = deque()
        self._queued_rows = 0           # queued or being written: the rows a SIGKILL loses
        self._condition = threading.Condition()
        self._closing = False
        self._flush_now = False
        self._engine = None
        self._dropped_since_warning: dict[str, int] = {}
        self._last_warning = 0.0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, scored: Scored) -> None:
        """Queue one request's rows, or drop them (counted) if the queue is full."""
        n = len(scored.probability)
        with self._condition:
            if self._closing or self._queued_rows + n > self.max_queued_rows:
                self._drop(n, "queue_full")
                return
            self._queue.append(scored)
            self._queued_rows += n
            if self._queued_rows >= self.batch_rows:
                self._condition.notify()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written or dropped; True if it was."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queued_rows and time.monotonic() < deadline:
                self._flush_now = True
                self._condition.notify_all()
                self._condition.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            return self._queued_rows == 0

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout)
        if self._engine is not None:
            self._engine.dispose()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: self._closing or self._flush_now
                    or self._queued_rows >= self.batch_rows, timeout=self.flush_seconds)
                self._flush_now = False
                batch = list(self._queue)
                self._queue.clear()
                if not batch and self._closing:
                    return
            if batch:
                rows = sum(len(s.probability) for s in batch)
                self._write(batch, rows)
                with self._condition:
                    self._queued_rows -= rows
                    self._condition.notify_all()

    def _write(self, batch: list[Scored], rows: int) -> None:
        try:
            if self._engine is None:
                self._engine = connect(self.url)
            records = [row for scored in batch for row in scored.rows()]
            with self._engine.begin() as connection:
                connection.execute(predictions.insert(), records)
            LOG_WRITTEN_ROWS.inc(rows)
        except Exception as exc:  # noqa: BLE001 - any database failure costs records, not answers
            with self._condition:
                self._drop(rows, "database", exc)

    def _drop(self, rows: int, reason: str, exc: Exception | None = None) -> None:
        """Count dropped rows; warn in one line, at most once a minute. Caller holds the lock."""
        LOG_DROPPED_ROWS.labels(reason).inc(rows)
        self._dropped_since_warning[reason] = self._dropped_since_warning.get(reason, 0) + rows
        if time.monotonic() - self._last_warning < WARN_EVERY_SECONDS:
            return
        self._last_warning = time.monotonic()
        counts = ", ".join(f"{n:,} ({why.replace('_', ' ')})"
                           for why, n in self._dropped_since_warning.items())
        self._dropped_since_warning = {}
        cause = f": {type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if exc else ""
        logger.warning("prediction log %s dropped rows: %s%s", _safe(self.url), counts, cause)


def _safe(url: str) -> str:
    """The URL without its password, for log lines."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(unparsable URL)"


_writers: dict[str, LogWriter] = {}
_writers_lock = threading.Lock()


def writer_for(url: str) -> LogWriter:
    with _writers_lock:
        if url not in _writers:
            _writers[url] = LogWriter(url)
        return _writers[url]


@atexit.register
def _close_all() -> None:
    for writer in list(_writers.values()):
        writer.close(timeout=5.0)
