"""The log's writer, the runtime's only way in: every scored row, written off the event loop.

The runtime hands over one `Scored` per answered request (`submit`: under a lock, its rows are
copied into the batch being filled, a column at a time). A thread sends each full batch (or,
every LOG_FLUSH_SECONDS, what there is) to a child process (child.py) that inserts it in one
transaction, so a row is in the log whole or not at all. The database works in a process of its own so that it never holds
the server's GIL, which the event loop needs for every answer.

A slow or unreachable database costs records, never answers: the queue is bounded in rows,
what does not fit is dropped, and so is a batch the database refuses. Dropped rows are
counted (`santander_log_dropped_rows_total{reason}` on the metrics port) and reported in one
warning line a minute at most; `santander_log_queued_rows` is what is queued or being written. Writing resumes by itself: every batch tries again.

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
from pathlib import Path
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import numpy as np
from prometheus_client import Counter, Gauge

from santander.config import LOG_BATCH_ROWS, LOG_FLUSH_SECONDS, LOG_QUEUE_ROWS
from santander.prediction_log.tables import log_url, safe_url
from santander.schema import N_FEATURES

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
    # (n, 200) float32; None: the rows another Scored of the same request already carries
    # (a shadow's: santander/serving/shadow.py), stored as empty blobs
    features: np.ndarray | None
    probability: np.ndarray     # (n,)
    threshold: float
    latency_ms: float


def now() -> datetime:
    return datetime.now(timezone.utc)


class Batch:
    """Rows on their way to the database, a column each: filled as requests are answered (a
    copy of each request's features and scores), sent to the child whole. The server's side
    of a batch is then a few sends of memory it already holds, not a pickle of its rows."""

    def __init__(self, capacity: int):
        self.features = np.empty((capacity, N_FEATURES), dtype=np.float32)
        self.probability = np.empty(capacity, dtype=np.float64)
        self.rows = 0
        self.feature_rows = 0           # rows that brought their features
        # Per request: its row count, whether it brought features, then Scored's other
        # fields in REQUEST_FIELDS order.
        self.requests: list[tuple] = []

    def room(self) -> int:
        return len(self.probability) - self.rows

    def add(self, scored: Scored) -> None:
        n = len(scored.probability)
        if scored.features is not None:
            self.features[self.feature_rows:self.feature_rows + n] = scored.features
            self.feature_rows += n
        self.probability[self.rows:self.rows + n] = scored.probability
        self.rows += n
        self.requests.append((n, scored.features is not None,
                              *(getattr(scored, name) for name in REQUEST_FIELDS)))

    def send(self, connection: Connection) -> None:
        connection.send(self.requests)
        connection.send_bytes(self.features[:self.feature_rows])
        connection.send_bytes(self.probability[:self.rows])


REQUEST_FIELDS = ("logged_at", "request_id", "id_codes", "model_name", "model_version",
                  "threshold", "latency_ms")


def receive_batch(connection: Connection) -> tuple[list[tuple], np.ndarray, np.ndarray]:
    """A `Batch` as the child receives it: (requests, features of the rows that brought them,
    probability)."""
    requests = connection.recv()
    features = np.frombuffer(connection.recv_bytes(), dtype=np.float32).reshape(-1, N_FEATURES)
    return requests, features, np.frombuffer(connection.recv_bytes(), dtype=np.float64)


class LogWriter:
    def __init__(self, url: str, max_queued_rows: int = LOG_QUEUE_ROWS,
                 batch_rows: int = LOG_BATCH_ROWS, flush_seconds: float = LOG_FLUSH_SECONDS):
        self.url = url
        self.max_queued_rows = max_queued_rows
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self._filling: Batch | None = None
        self._sealed: deque[Batch] = deque()
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
            if self._filling is None or self._filling.room() < n:
                self._seal()
                self._filling = Batch(max(self.batch_rows, n))
            self._filling.add(scored)
            self._queued_rows += n
            if self._filling.rows >= self.batch_rows:
                self._seal()
                self._condition.notify()

    def _seal(self) -> None:
        """The batch being filled is complete: on to the queue. Caller holds the lock."""
        if self._filling is not None and self._filling.rows:
            self._sealed.append(self._filling)
        self._filling = None

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
                    lambda: self._closing or self._flush_now or self._sealed,
                    timeout=self.flush_seconds)
                self._flush_now = False
                if not self._sealed:            # a timeout, a flush or the end: what there is
                    self._seal()
                # One batch per transaction, however far behind: what the child holds in
                # memory at once stays small.
                batch = self._sealed.popleft() if self._sealed else None
                if batch is None and self._closing:
                    return
            if batch is not None:
                rows = batch.rows
                failure = self._write(batch)
                with self._condition:
                    if failure is None:
                        WRITTEN_ROWS.inc(rows)
                    else:
                        self._drop(rows, "database", failure)
                    self._queued_rows -= rows
                    self._condition.notify_all()

    def _write(self, batch: Batch) -> str | None:
        """Send a batch to the child and wait for its answer: None once committed, else why
        nothing of it was written."""
        try:
            connection = self._connection or self._start_child()
            batch.send(connection)
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


# Read when scraped, so answering pays nothing for it: 0 once everything handed over so far is
# written or dropped (what a benchmark or a test waits for).
QUEUED_ROWS = Gauge("santander_log_queued_rows",
                    "scored rows handed to the prediction log, not yet written or dropped")
QUEUED_ROWS.set_function(lambda: sum(w.queued_rows for w in list(_writers.values())))


def writer_for(repository: str | Path) -> LogWriter | None:
    """The writer of `repository`'s log (where tables.log_url says), or None when the log is
    off: one per log for the whole process."""
    url = log_url(repository)
    if url is None:
        return None
    with _writers_lock:
        if url not in _writers:
            _writers[url] = LogWriter(url)
        return _writers[url]


@atexit.register
def _close_all() -> None:
    for writer in list(_writers.values()):
        writer.close(timeout=5.0)
