"""The log's writer, the runtime's only way in: every scored row, written off the event loop.

The runtime hands over one `Scored` per answered request (`submit`: a lock, an append and a
count). A thread gathers them into batches of whole requests and sends each, a column at a
time, to a child process (child.py) that inserts it in one transaction, so a row is in the
log whole or not at all. The database works in a process of its own so that it never holds
the server's GIL, which the event loop needs for every answer.

A slow or unreachable database costs records, never answers: the queue is bounded in rows,
what does not fit is dropped, and so is a batch the database refuses. Dropped rows are
counted (`santander_log_dropped_rows_total{reason}` on the metrics port) and reported in one
warning line a minute at most. Writing resumes by itself: every batch tries again.

What a SIGKILL of the server loses: the rows queued and not yet committed, at most
`max_queued_rows`; the child commits the batch it holds, then sees the connection end and
exits. A normal stop (SIGTERM) flushes. A child that dies costs the batch it held (counted),
and the next batch starts another.

One writer per log URL per process, shared by every version the process serves
(`writer_for`): SQLite sees one writer.
"""

from __future__ import annotations

import atexit
import logging
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import numpy as np
from prometheus_client import Counter

from santander.config import LOG_BATCH_ROWS, LOG_FLUSH_SECONDS, LOG_QUEUE_ROWS
from santander.prediction_log.tables import safe_url

logger = logging.getLogger("santander.prediction_log")
WARN_EVERY_SECONDS = 60.0

# On MLServer's metrics port (prometheus_client's default registry, as the runtime's own).
WRITTEN_ROWS = Counter("santander_log_written_rows", "scored rows written to the prediction log")
DROPPED_ROWS = Counter("santander_log_dropped_rows",
                       "scored rows the prediction log dropped (queue full, database failed)",
                       ["reason"])


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


def now() -> datetime:
    return datetime.now(timezone.utc)


def batch_columns(scored: list[Scored]) -> dict:
    """What the child receives for a batch: a column each, numpy for the numbers, so pickling
    it costs the server little."""
    return {"counts": [len(s.probability) for s in scored],
            "features": np.concatenate([s.features for s in scored]),
            "probability": np.concatenate([s.probability for s in scored]),
            **{name: [getattr(s, name) for s in scored]
               for name in ("logged_at", "request_id", "id_codes", "model_name",
                            "model_version", "threshold", "latency_ms")}}


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
        self._child: subprocess.Popen | None = None
        self._connection: Connection | None = None
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
        self._stop_child(timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: self._closing or self._flush_now
                    or self._queued_rows >= self.batch_rows, timeout=self.flush_seconds)
                self._flush_now = False
                # At most a batch's rows per transaction, however far behind: what the child
                # holds in memory at once stays small (whole requests, so a big one may pass).
                batch, rows = [], 0
                while self._queue and rows < self.batch_rows:
                    batch.append(self._queue.popleft())
                    rows += len(batch[-1].probability)
                if not batch and self._closing:
                    return
            if batch:
                failure = self._write(batch_columns(batch))
                with self._condition:
                    if failure is None:
                        WRITTEN_ROWS.inc(rows)
                    else:
                        self._drop(rows, "database", failure)
                    self._queued_rows -= rows
                    self._condition.notify_all()

    def _write(self, columns: dict) -> str | None:
        """Send a batch to the child and wait for its answer: None once committed, else why
        nothing of it was written."""
        try:
            connection = self._connection or self._start_child()
            connection.send(columns)
            return connection.recv()
        except (OSError, EOFError) as exc:  # the child is gone: the next batch starts another
            code = self._stop_child(1.0)
            return f"the log process stopped ({type(exc).__name__}, exit code {code})"
        except Exception as exc:  # noqa: BLE001 - a batch that cannot be sent costs its rows only
            return f"unsendable batch: {type(exc).__name__}: {exc}"

    def _start_child(self) -> Connection:
        ours, theirs = Pipe()
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "santander.prediction_log.child", str(theirs.fileno())],
                pass_fds=[theirs.fileno()])
        finally:
            theirs.close()
        # The URL goes over the connection, not the command line, where `ps` would show it.
        ours.send(self.url)
        self._connection = ours
        return ours

    def _stop_child(self, timeout: float) -> int | None:
        """End the child (the connection closed: it finishes its batch and exits); its exit
        code."""
        child, connection = self._child, self._connection
        self._child = self._connection = None
        if connection is not None:
            connection.close()
        if child is None:
            return None
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()

    def _drop(self, rows: int, reason: str, cause: str = "") -> None:
        """Count dropped rows; warn in one line, at most once a minute. Caller holds the lock."""
        DROPPED_ROWS.labels(reason).inc(rows)
        self._dropped_since_warning[reason] = self._dropped_since_warning.get(reason, 0) + rows
        if time.monotonic() - self._last_warning < WARN_EVERY_SECONDS:
            return
        self._last_warning = time.monotonic()
        counts = ", ".join(f"{n:,} ({why.replace('_', ' ')})"
                           for why, n in self._dropped_since_warning.items())
        self._dropped_since_warning = {}
        logger.warning("prediction log %s dropped rows: %s%s", safe_url(self.url), counts,
                       f": {cause}" if cause else "")


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
