"""The prediction log's writer: every scored row, written off the event loop in batches.

The runtime hands over one `Scored` per answered request (`submit`: a lock, an append and a
count, nothing more on the request path). A thread of its own gathers them into batches and
hands each, a column at a time, to a child process that inserts it in one transaction
(santander/serving/log_process.py says why a process; log_priority.py, when it runs), so a
row is in the log whole or not at all. A slow or unreachable database costs records, never
answers: the queue is bounded in rows, what does not fit is dropped, and so is a batch the
database refuses. Dropped rows are counted (`santander_log_dropped_rows_total{reason}` on the
metrics port) and reported in one warning line a minute at most.

What a SIGKILL of the server loses: the rows queued and not yet committed, at most
`max_queued_rows` (rows stay counted as queued until their batch commits); the child still
commits the batch it holds, then sees its input end and exits. A normal stop (SIGTERM)
flushes. A child that dies costs the batch it held (counted), and the next batch starts
another.

One writer per log URL per process, shared by every version the process serves
(`writer_for`): one connection pool, and SQLite sees one writer.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import santander
from santander.config import (LOG_BATCH_ROWS, LOG_CATCH_UP_ROWS, LOG_FLUSH_SECONDS,
                              LOG_QUEUE_ROWS)
from santander.serving.log_priority import ChildPriority
from santander.serving.log_process import batch_columns, read_frame, send_frame
from santander.serving.metrics import LOG_DROPPED_ROWS, LOG_WRITTEN_ROWS

logger = logging.getLogger("santander.prediction_log")
WARN_EVERY_SECONDS = 60.0
CATCH_UP_CHECK_SECONDS = 0.1     # how often, while the child writes, the queue is looked at


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


class LogWriter:
    def __init__(self, url: str, max_queued_rows: int = LOG_QUEUE_ROWS,
                 batch_rows: int = LOG_BATCH_ROWS, flush_seconds: float = LOG_FLUSH_SECONDS,
                 catch_up_rows: int = LOG_CATCH_UP_ROWS):
        self.url = url
        self.max_queued_rows = max_queued_rows
        self.catch_up_rows = catch_up_rows
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self._queue: deque[Scored] = deque()
        self._queued_rows = 0           # queued or being written: the rows a SIGKILL loses
        self._condition = threading.Condition()
        self._closing = False
        self._flush_now = False
        self._child: subprocess.Popen | None = None
        self._priority: ChildPriority | None = None
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
                self._write(batch, rows)
                with self._condition:
                    self._queued_rows -= rows
                    self._condition.notify_all()

    def _write(self, batch: list[Scored], rows: int) -> None:
        try:
            payload = pickle.dumps(batch_columns(batch), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - a batch that cannot be sent costs its rows only
            with self._condition:
                self._drop(rows, "database", f"unsendable batch: {type(exc).__name__}: {exc}")
            return
        try:
            child = self._child_process()
            self._priority.keep_up(self._queued_rows)
            send_frame(child.stdin, payload)
            answer = self._answer(child)
        except OSError as exc:
            answer, gone = None, f"{type(exc).__name__}: {exc}"
        else:
            gone = "it exited"
        if answer == b"":
            LOG_WRITTEN_ROWS.inc(rows)
            return
        if answer is None:              # the child is gone: the next batch starts another
            code = self._stop_child(1.0)
            failure = f"the log process stopped ({gone}, exit code {code})"
        else:
            failure = answer.decode(errors="replace")
        with self._condition:
            self._drop(rows, "database", failure)

    def _answer(self, child: subprocess.Popen) -> bytes | None:
        """The child's answer to the batch it was sent, its priority kept to the queue's length
        meanwhile: a batch begun in the core's idle time must not be stranded there. (Where the
        child's priority is fixed, nothing to look at: the thread just waits.)"""
        while (self._priority.adaptive
               and not select.select([child.stdout], [], [], CATCH_UP_CHECK_SECONDS)[0]):
            self._priority.keep_up(self._queued_rows)
        return read_frame(child.stdout)

    def _child_process(self) -> subprocess.Popen:
        if self._child is None:
            # The child imports this package from where the server did.
            package_root = str(Path(santander.__file__).resolve().parents[1])
            path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            self._child = subprocess.Popen(
                [sys.executable, "-m", "santander.serving.log_process"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": path})
            send_frame(self._child.stdin, self.url.encode())
            self._priority = ChildPriority(self._child.pid, self.catch_up_rows)
        return self._child

    def _stop_child(self, timeout: float) -> int | None:
        """End the child (its input closed: it finishes its batch and exits); its exit code."""
        child, self._child = self._child, None
        if child is None:
            return None
        try:
            child.stdin.close()
        except OSError:
            pass
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()

    def _drop(self, rows: int, reason: str, cause: str = "") -> None:
        """Count dropped rows; warn in one line, at most once a minute. Caller holds the lock."""
        LOG_DROPPED_ROWS.labels(reason).inc(rows)
        self._dropped_since_warning[reason] = self._dropped_since_warning.get(reason, 0) + rows
        if time.monotonic() - self._last_warning < WARN_EVERY_SECONDS:
            return
        self._last_warning = time.monotonic()
        counts = ", ".join(f"{n:,} ({why.replace('_', ' ')})"
                           for why, n in self._dropped_since_warning.items())
        self._dropped_since_warning = {}
        logger.warning("prediction log %s dropped rows: %s%s", _safe(self.url), counts,
                       f": {cause}" if cause else "")


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
