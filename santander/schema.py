"""The Santander schema: one definition, used by data validation and by the serving runtime.

Kept free of heavy imports so the runtime can use it on the request path.
"""

N_FEATURES = 200
ID_COLUMN = "ID_code"
TARGET_COLUMN = "target"
FEATURES: tuple[str, ...] = tuple(f"var_{i}" for i in range(N_FEATURES))
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURES)}

# What the model accepts and answers over the V2 protocol.
INPUT_NAME = "features"
INPUT_DATATYPES = ("FP32", "FP64")
OUTPUT_PROBABILITY = "probability"
OUTPUT_LABEL = "label"
# On request: [n, N_FEATURES + 1], each feature's share of the log-odds, then the bias.
OUTPUT_CONTRIBUTIONS = "contributions"

# Published facts of the real training set (Kaggle train.csv).
REAL_POSITIVE_RATE = 0.10049
REAL_ROWS = 200_000
