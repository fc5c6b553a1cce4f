"""CPython's cyclic garbage collector, set for a serving process.

A loaded server holds a large heap the collector tracks (MLServer, FastAPI, pydantic, gRPC,
numpy, XGBoost), nearly all made at start-up and kept to the end. A full collection walks all
of it, and no request is answered meanwhile. Each request allocates a few hundred short-lived
containers (JSON lists and dicts, pydantic models), so with CPython's default thresholds
(700, 10, 10) young collections run every few requests and full ones often enough to show in
the tail.

With `config.SERVING_GC_THRESHOLDS` young collections run far less often, and full ones rarer
still. Garbage that only the collector can free (reference cycles) waits longer: at most one
generation's worth of objects, a few MB. Raised thresholds alone did as well as raised
thresholds with `gc.freeze()` in the serving benchmark (BENCHMARKS.md has this deployment's
figures against stock MLServer), so there is no freeze: it would keep an unloaded model
version's reference cycles for the life of the process.

Process-wide, so it is set once, from the runtime's `load()`: with `parallel_workers` 0 that
is the process that also parses the requests. It never lowers thresholds set higher.
"""

from __future__ import annotations

import gc

from santander import config


def tune_for_serving() -> tuple[int, int, int]:
    """Raise the collector's thresholds to SERVING_GC_THRESHOLDS; returns the ones in force."""
    current = gc.get_threshold()
    wanted = tuple(max(have, want) for have, want in zip(current, config.SERVING_GC_THRESHOLDS))
    if wanted != current:
        gc.set_threshold(*wanted)
    return gc.get_threshold()
