"""Every default of the project in one place: paths, seeds, the served name, batching."""

from pathlib import Path

# Where things live, relative to the working directory (the repository's root for users).
DEPLOY_DIR = Path("deploy")              # `mlserver start deploy`: settings.json + model versions
MODELS_SUBDIR = "models"                 # versions: deploy/models/<name>/<version>/
DATA_DIR = Path("data")
FROM_LOG_DIR = Path("data/from-log")     # `retrain --from-log` writes the labelled rows here
REPORTS_SUBDIR = "reports"               # reports: deploy/reports/<name>/<version>/ (per repository)
TRACKING_DIR = Path("mlruns")            # the embedded MLflow store (MLFLOW_TRACKING_URI overrides)
EXPERIMENT_NAME = "santander"

# The endpoint users call: POST /v2/models/xgboost-model/infer (whichever family won).
MODEL_NAME = "xgboost-model"
RUNTIME_IMPLEMENTATION = "santander.serving.runtime.SantanderRuntime"

SEED = 42
DEFAULT_ROWS = 200_000


def built_in_data_path(rows: int = DEFAULT_ROWS, seed: int = SEED) -> Path:
    """Where the built-in data of `rows` rows and `seed` lives: named by both, so a small
    first run never leaves a file that a later full run takes for its own (the Makefile's
    DATA names the same file)."""
    return DATA_DIR / f"train-{rows}rows-seed{seed}.parquet"


DEFAULT_DATA = built_in_data_path()
HOLDOUT_FRACTION = 0.2
N_FOLDS = 5
MIN_ROWS_PER_CLASS = 10     # a stratified 80/20 holdout and 5 folds need a few of each class

# --quick: a subsample and reduced search spaces, for tests and a first look.
QUICK_ROWS = 4_000

# Halving over each family's configurations: each rung keeps the best 1/HALVING_FACTOR on
# HALVING_FACTOR times more rows, the last rung using all training rows.
HALVING_FACTOR = 3

# The slow families (extra trees and the boosters) race on 1/9 and 1/3 of the rows before their
# full 5-fold run, and run it only if they could still win (santander/training/selection.py).
# The projection to all rows assumes each threefold step of rows gains half the F1 the step
# before it gained (learning curves flatten as a power of the rows; the boosters' did about so
# on the built-in data), and adds two standard errors.
RACE_COMPLEXITY = 3
RACE_CURVE_DECAY = 0.5
RACE_STANDARD_ERRORS = 2.0

# Adaptive batching of the served model (MLServer's model-settings fields; the runtime's
# RowBatcher applies them). A batch waits up to the window after its first request, so a
# lone request waits the whole window: it is kept shorter than one request takes to parse,
# and a batch is what has queued up meanwhile. Under load that still merges many requests
# (bench/serving.py: BENCHMARKS.md has the figures for a 1 ms window).
MAX_BATCH_SIZE = 64
MAX_BATCH_TIME = 0.0001   # seconds

# What one request may ask of the server (model-settings.json `parameters.extra.limits`; a
# version exported without them gets these). 10,000 rows is ~24 MB of JSON and 8 MB as gRPC
# raw tensors; anything bigger belongs in a batch job, not a request.
MAX_REQUEST_ROWS = 10_000
MAX_REQUEST_BYTES = 32 * 2**20        # REST body (Content-Length) and gRPC message

# The model-settings key (`parameters.extra`) that marks the repository's unversioned entry for
# the default version and names that version (santander/serving/repository.py).
SERVES_VERSION_SETTING = "serves_version"
# ... and, on that entry, the version scoring in the default's shadow (santander shadow).
SHADOW_SETTING = "shadow"

# CPython's cyclic garbage collector in the serving process (santander/serving/gc_tuning.py says why):
# a first-generation pass every 50,000 allocations instead of 700, and full passes rarer.
SERVING_GC_THRESHOLDS = (50_000, 20, 100)

# The prediction log (santander/prediction_log/). A share of requests is logged
# (SANTANDER_LOG_SAMPLE_RATE overrides, and a version's own log_sample_rate overrides that),
# every row of each. The writer commits a batch when LOG_BATCH_ROWS are queued or every
# LOG_FLUSH_SECONDS; past LOG_QUEUE_ROWS queued rows (~16 MB of features) new ones are dropped
# and counted, and that is also the most a SIGKILL of the server loses. Small batches: the log's
# process holds the core for a short while at a time, so answers on a shared core wait less
# (BENCHMARKS.md, Sustained).
LOG_SAMPLE_RATE = 1.0
LOG_SAMPLE_RATE_ENV = "SANTANDER_LOG_SAMPLE_RATE"
LOG_SAMPLE_RATE_SETTING = "log_sample_rate"    # a version's own, in parameters.extra
LOG_BATCH_ROWS = 250
LOG_FLUSH_SECONDS = 0.5
LOG_QUEUE_ROWS = 20_000

# Drift monitoring (santander/monitoring/drift.py). Each version keeps REFERENCE_ROWS of its
# training rows; a feature has drifted when Evidently's test for it says so, and the traffic
# has drifted when more than DRIFT_SHARE of the columns (200 features and the score) have.
# Fewer than MIN_MONITORED_ROWS logged rows are too few to tell.
REFERENCE_ROWS = 5_000
DRIFT_SHARE = 0.5
MIN_MONITORED_ROWS = 100

# Serving defaults. Neither the host nor the ports are written into settings.json: values there
# win over MLSERVER_* variables, so `santander serve --host/--port` (which set them) and the
# image (MLSERVER_HOST=0.0.0.0) could not change them.
SERVER_HOST = "127.0.0.1"
HTTP_PORT = 8080
GRPC_PORT = 8081
METRICS_PORT = 8082

# The server settings export writes into a new repository (deploy/settings.json holds the
# same; a test keeps them equal).
SERVER_SETTINGS = {
    # Host and ports are left out on purpose: values here would override MLSERVER_* variables.
    "debug": False,
    "parallel_workers": 0,    # one process: a worker pool halves throughput on 2 cores
    "load_models_at_startup": True,
    # Answers are a few hundred bytes: compressing them costs time and saves nothing
    # (measured in bench/serving.py).
    "gzip_enabled": False,
    # Skips a version whose artifact is damaged instead of letting it stop the server.
    "model_repository_implementation": "santander.serving.repository.VerifiedRepository",
    # gRPC refuses bigger messages itself (RESOURCE_EXHAUSTED); its default is 4 MiB.
    "grpc_max_message_length": MAX_REQUEST_BYTES,
}
