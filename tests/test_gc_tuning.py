"""The serving process's garbage-collector thresholds: raised, never lowered."""

from __future__ import annotations

import gc

import pytest

from santander import config
from santander.serving import gc_tuning


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_default_thresholds_are_raised(thresholds):
    gc.set_threshold(700, 10, 10)
    assert gc_tuning.tune_for_serving() == config.SERVING_GC_THRESHOLDS
    assert gc.get_threshold() == config.SERVING_GC_THRESHOLDS


def test_thresholds_already_higher_are_kept(thresholds):
    higher = tuple(2 * t for t in config.SERVING_GC_THRESHOLDS)
    gc.set_threshold(*higher)
    assert gc_tuning.tune_for_serving() == higher
