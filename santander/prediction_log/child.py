"""The log's database side: a child process of the server (started by writer.py) that inserts
the batches the writer thread sends over a `multiprocessing` connection.

The writer sends the log's URL first, then one batch at a time (`writer.Batch`). The
child inserts each in one transaction and answers None once it is committed, or the one-line
error the database gave (nothing of the batch was written). When the connection ends (the
server stopped or was killed), the child exits.

Run by the writer as `python -m santander.prediction_log.child <fd>`: a plain interpreter, not
multiprocessing's spawn, which would import the server's own entry point (MLServer's CLI) in
the child first.
"""

from __future__ import annotations

import os
import signal
import sys
from itertools import chain, repeat
from multiprocessing.connection import Connection

import numpy as np

from santander.prediction_log.tables import connect, predictions
from santander.prediction_log.writer import receive_batch

LOG_PROCESS_NICENESS = 4

# Inserts go below SQLAlchemy Core to the DB-API with plain tuples, many rows to one
# INSERT ... VALUES (...), (...): Core's per-row parameter handling cost most of a row's
# time. The table is still SQLAlchemy's, and so is the one conversion a driver cannot do
# itself (SQLite's text form of `logged_at`), taken once per request.
INSERT_COLUMNS = ("logged_at", "request_id", "row_index", "id_code", "model_name",
                  "model_version", "features", "probability", "label", "threshold",
                  "latency_ms")
ROWS_PER_STATEMENT = 250      # 2,750 parameters: well inside SQLite's 32,766 and Postgres' 65,535


def insert_rows(requests: list[tuple], features: np.ndarray, probability: np.ndarray,
                bind_time) -> list[tuple]:
    """A batch's rows in `INSERT_COLUMNS` order, built a column at a time from what
    `writer.Batch` sends: per request (n, brought features, *REQUEST_FIELDS), per row scores,
    and the features of the rows that brought them (the others get an empty blob)."""
    counts, brought, logged_at, request_id, id_codes, model_name, model_version, threshold, \
        latency_ms = zip(*requests)

    def per_request(values):
        if all(n == 1 for n in counts):
            return values
        return list(chain.from_iterable(repeat(v, n) for v, n in zip(values, counts)))

    features = np.ascontiguousarray(features, dtype="<f4")
    blobs = features.view(np.dtype((np.void, features.shape[1] * 4))).ravel().tolist()
    if not all(brought):
        given = iter(blobs)
        blobs = [next(given) if has else b"" for n, has in zip(counts, brought)
                 for _ in range(n)]
    thresholds = per_request(threshold)
    labels = (probability >= np.asarray(thresholds)).astype(int).tolist()
    return list(zip(
        per_request([bind_time(t) for t in logged_at]),
        per_request(request_id),
        chain.from_iterable(range(n) for n in counts),
        chain.from_iterable(ids or repeat(None, n) for ids, n in zip(id_codes, counts)),
        per_request(model_name),
        per_request(model_version),
        blobs, probability.tolist(), labels, thresholds,
        per_request(latency_ms)))


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

    def write(self, requests: list[tuple], features: np.ndarray, probability: np.ndarray) -> None:
        if self._engine is None:
            self._engine = connect(self.url)
            self._inserter = RowInserter(self._engine)
        rows = insert_rows(requests, features, probability, self._inserter.bind_time)
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


def serve(connection: Connection) -> None:
    store = BatchStore(connection.recv())
    try:
        while True:
            try:
                batch = receive_batch(connection)
            except EOFError:
                return
            try:
                store.write(*batch)
                answer = None
            except Exception as exc:  # noqa: BLE001 - the writer counts the batch as dropped
                answer = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
            connection.send(answer)
    finally:
        store.close()


def main(argv: list[str]) -> int:
    # The server decides when the log stops (it closes the connection); a Ctrl-C sent to the
    # terminal's whole process group must not cut a batch short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One fixed priority, a little below the server's: answers come first when both want
    # the core, and the log still keeps up on a saturated one (BENCHMARKS.md, Sustained).
    os.nice(LOG_PROCESS_NICENESS)
    try:
        serve(Connection(int(argv[1])))
    except (BrokenPipeError, ConnectionResetError, EOFError):  # the server is gone
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
