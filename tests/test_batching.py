"""RowBatcher: requests that arrive together share one model call, each gets its own rows."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from santander.serving.batching import RowBatcher


class CountingModel:
    """Scores a row as its first value; remembers how many rows each call had."""

    def __init__(self, fail_on: int | None = None):
        self.calls: list[int] = []
        self.fail_on = fail_on

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise RuntimeError("model failed")
        return X[:, 0] * 10


def _rows(k: int, n: int) -> np.ndarray:
    return np.full((n, 3), float(k))


async def _callers(batcher: RowBatcher, sizes: list[int]) -> list:
    return await asyncio.gather(*(batcher.score(_rows(k, n)) for k, n in enumerate(sizes)),
                                return_exceptions=True)


def test_callers_arriving_together_share_one_call_and_get_their_own_rows():
    model, batches = CountingModel(), []
    batcher = RowBatcher(model, max_batch_size=64, max_batch_time=0.01,
                         on_batch=batches.append)
    sizes = [1, 3, 2, 1, 5]
    answers = asyncio.run(_callers(batcher, sizes))
    assert model.calls == [sum(sizes)] and batches == [sum(sizes)]
    for k, (n, answer) in enumerate(zip(sizes, answers)):
        np.testing.assert_array_equal(answer, np.full(n, 10.0 * k))


def test_a_batch_closes_at_max_batch_size_requests():
    model = CountingModel()
    batcher = RowBatcher(model, max_batch_size=4, max_batch_time=0.05)
    answers = asyncio.run(_callers(batcher, [1] * 10))
    assert model.calls == [4, 4, 2]          # two full batches, then the window closes one
    assert [float(a[0]) for a in answers] == [10.0 * k for k in range(10)]


def test_a_lone_request_waits_at_most_the_window():
    model = CountingModel()
    batcher = RowBatcher(model, max_batch_size=64, max_batch_time=0.05)

    async def lone() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.score(_rows(1, 1))
        return loop.time() - start

    waited = asyncio.run(lone())
    assert model.calls == [1] and 0.04 <= waited < 1.0


def test_without_batching_each_request_is_its_own_call():
    for size, window in ((1, 0.01), (64, 0.0)):
        model = CountingModel()
        asyncio.run(_callers(RowBatcher(model, size, window), [2, 1, 3]))
        assert model.calls == [2, 1, 3]


def test_a_model_error_reaches_every_caller_of_that_batch_and_the_next_batch_works():
    model = CountingModel(fail_on=1)
    batcher = RowBatcher(model, max_batch_size=64, max_batch_time=0.001)

    async def two_rounds():
        first = await _callers(batcher, [1, 2])
        second = await _callers(batcher, [1])
        return first, second

    first, second = asyncio.run(two_rounds())
    assert all(isinstance(a, RuntimeError) for a in first)
    np.testing.assert_array_equal(second[0], [0.0])


def test_a_caller_that_goes_away_does_not_break_the_others():
    model = CountingModel()
    batcher = RowBatcher(model, max_batch_size=64, max_batch_time=0.02)

    async def one_cancelled():
        tasks = [asyncio.create_task(batcher.score(_rows(k, 1))) for k in range(3)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    answers = asyncio.run(one_cancelled())
    assert isinstance(answers[1], asyncio.CancelledError)
    assert float(answers[0][0]) == 0.0 and float(answers[2][0]) == 20.0


@pytest.mark.parametrize("size", [2, 7])
def test_rows_stay_in_order_inside_each_answer(size):
    batcher = RowBatcher(lambda X: X[:, 1], max_batch_size=8, max_batch_time=0.001)
    X = np.column_stack([np.zeros(size), np.arange(size, dtype=float)])

    async def two():
        return await asyncio.gather(batcher.score(X), batcher.score(X + 100))

    a, b = asyncio.run(two())
    np.testing.assert_array_equal(a, np.arange(size))
    np.testing.assert_array_equal(b, np.arange(size) + 100)
