"""The runtime's own Prometheus metrics, on MLServer's metrics port.

Registered with prometheus_client's default registry, not through `mlserver.register()`:
MLServer keeps those in a registry of its own, which its /metrics serves only with parallel
workers (this deployment runs `parallel_workers` 0). And defined here, not in runtime.py:
MLServer re-imports (importlib.reload) a model's implementation module whenever it reads the
model's settings, and registering one name twice is an error.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BATCH_ROWS = Histogram("santander_batch_rows", "rows scored per model call (adaptive batching)",
                       ["model_name", "model_version"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))

# Answered rows by version and label: the positive-prediction rate, live, is
#   sum by (model_version) (rate(santander_scored_rows_total{label="1"}[5m]))
#     / sum by (model_version) (rate(santander_scored_rows_total[5m]))
SCORED_ROWS = Counter("santander_scored_rows", "rows answered, by the label they were given",
                      ["model_name", "model_version", "label"])
