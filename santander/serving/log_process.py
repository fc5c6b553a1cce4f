"""The prediction log's database side: a child process of the server that inserts the batches
the writer thread (santander/serving/log_writer.py) sends it.

Why a process: in the server's own process the database work cost ~8% of the 64-caller
throughput while the writer thread used ~3% of the CPU. The rest was the event loop waiting
for the GIL (BENCHMARKS.md, Serving). Here it has a GIL of its own.

The protocol, over the child's stdin and stdout, in frames (an 8-byte length, then the bytes):
the writer sends the log's URL first (not on the command line, where `ps` would show its
password), then one batch per frame, a pickle of `batch_columns`. The child inserts each in
one transaction and answers with a frame holding "" when it is committed, or the one-line
error the database gave (nothing of the batch was written). End of stdin: the child exits.

Run by the writer as `python -m santander.serving.log_process`.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from itertools import chain, repeat
from typing import BinaryIO

import numpy as np

from santander.prediction_log import connect, predictions

FRAME_HEADER = struct.Struct("<Q")
LOG_PROCESS_NICENESS = 4

# Inserts go below SQLAlchemy Core to the DB-API with plain tuples, many rows to one
# INSERT ... VALUES (...), (...): Core's per-row parameter handling cost ~17 µs of the ~25 µs
# a row took. The table is still SQLAlchemy's, and so is the one conversion a driver cannot
# do itself (SQLite's text form of `logged_at`), taken once per request.
INSERT_COLUMNS = ("logged_at", "request_id", "row_index", "id_code", "model_name",
                  "model_version", "features", "probability", "label", "threshold",
                  "latency_ms")
ROWS_PER_STATEMENT = 250      # 2,750 parameters: well inside SQLite's 32,766 and Postgres' 65,535


def batch_columns(scored: list) -> dict:
    """What the writer sends for a batch of `log_writer.Scored`: a column each, numpy for the
    numbers, so pickling it costs the server little."""
    return {"counts": [len(s.probability) for s in scored],
            "features": np.concatenate([s.features for s in scored]),
            "probability": np.concatenate([s.probability for s in scored]),
            **{name: [getattr(s, name) for s in scored]
               for name in ("logged_at", "request_id", "id_codes", "model_name",
                            "model_version", "threshold", "latency_ms")}}


def insert_rows(columns: dict, bind_time) -> list[tuple]:
    """A batch's rows in `INSERT_COLUMNS` order, built a column at a time."""
    counts = columns["counts"]

    def per_request(values):
        if all(n == 1 for n in counts):
            return values
        return list(chain.from_iterable(repeat(v, n) for v, n in zip(values, counts)))

    features = np.ascontiguousarray(columns["features"], dtype="<f4")
    blobs = features.view(np.dtype((np.void, features.shape[1] * 4))).ravel().tolist()
    probability = np.asarray(columns["probability"], dtype=np.float64)
    thresholds = per_request(columns["threshold"])
    labels = (probability >= np.asarray(thresholds)).astype(int).tolist()
    return list(zip(
        per_request([bind_time(t) for t in columns["logged_at"]]),
        per_request(columns["request_id"]),
        chain.from_iterable(range(n) for n in counts),
        chain.from_iterable(ids or repeat(None, n) for ids, n in zip(columns["id_codes"], counts)),
        per_request(columns["model_name"]),
        per_request(columns["model_version"]),
        blobs, probability.tolist(), labels, thresholds,
        per_request(columns["latency_ms"])))


class RowInserter:
    """Inserts rows in `INSERT_COLUMNS` order through a DB-API cursor of `engine`'s driver."""

    def __init__(self, engine):
        dialect = engine.dialect
        self._marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}[dialect.paramstyle]
        process = predictions.c.logged_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.bind_time = process or (lambda value: value)
        self._statements: dict[int, str] = {}

    def insert(self, cursor, rows: list[tuple]) -> None:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start:start + ROWS_PER_STATEMENT]
            cursor.execute(self._statement(len(chunk)), list(chain.from_iterable(chunk)))

    def _statement(self, n_rows: int) -> str:
        if n_rows not in self._statements:
            row = f"({', '.join([self._marker] * len(INSERT_COLUMNS))})"
            self._statements[n_rows] = (
                f"INSERT INTO {predictions.name} ({', '.join(INSERT_COLUMNS)}) VALUES "
                + ", ".join([row] * n_rows))
        return self._statements[n_rows]


class BatchStore:
    """Writes batches to the log at `url`, each in one transaction; connects when first
    needed and again after a failure."""

    def __init__(self, url: str):
        self.url = url
        self._engine = None
        self._inserter: RowInserter | None = None

    def write(self, columns: dict) -> None:
        if self._engine is None:
            self._engine = connect(self.url)
            self._inserter = RowInserter(self._engine)
        rows = insert_rows(columns, self._inserter.bind_time)
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            self._inserter.insert(cursor, rows)
            cursor.close()
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def send_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(FRAME_HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame, or None at the end of the stream."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    payload = stream.read(FRAME_HEADER.unpack(header)[0])
    return payload if len(payload) == FRAME_HEADER.unpack(header)[0] else None


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    url = read_frame(requests)
    if url is None:
        return
    store = BatchStore(url.decode())
    try:
        while (frame := read_frame(requests)) is not None:
            try:
                store.write(pickle.loads(frame))
                answer = ""
            except Exception as exc:  # noqa: BLE001 - the writer counts the batch as dropped
                answer = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
            send_frame(answers, answer.encode())
    finally:
        store.close()


def lower_priority() -> None:
    """Nice 4: what the child competes at when the log falls behind, and throughout where the
    writer cannot move it into the core's idle time (log_priority.py says why). At nice 10 it
    fell behind at ~15,000 rows/s and dropped a fifth."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < LOG_PROCESS_NICENESS:
        os.setpriority(os.PRIO_PROCESS, 0, LOG_PROCESS_NICENESS)


def main() -> int:
    # The server decides when the log stops (it closes our stdin); a Ctrl-C sent to the
    # terminal's whole process group must not cut a batch short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lower_priority()
    # Answers get stdout's descriptor to themselves: anything else printing goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(sys.stdin.buffer, answers)
    except BrokenPipeError:     # the server is gone (killed): nobody is left to answer
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
