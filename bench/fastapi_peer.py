"""The plain-FastAPI peer: a typical hand-written service, the model loaded once.

    BENCH_MODEL=model.ubj uvicorn bench.fastapi_peer:app --port 8000      # an XGBoost booster
    BENCH_VERSION=deploy/xgboost-model/3 uvicorn bench.fastapi_peer:app   # any exported version

It speaks just enough V2 (a `features` tensor in, `probability` out) for the same load.
"""

from __future__ import annotations

import os

import numpy as np
import xgboost
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

from santander.config import MODEL_NAME


def _positive_probability():
    if "BENCH_VERSION" in os.environ:
        # The runtime's own loader: both servers score with the same model code.
        from santander.loader import load_version
        model, _ = load_version(os.environ["BENCH_VERSION"])
        return lambda X: model.predict_proba(X)[:, 1]
    booster = xgboost.Booster(model_file=os.environ["BENCH_MODEL"])
    booster.set_param({"nthread": 1})
    return booster.inplace_predict


positive_probability = _positive_probability()
app = FastAPI()


@app.get(f"/v2/models/{MODEL_NAME}/ready")
async def ready() -> dict:
    return {}


@app.post(f"/v2/models/{MODEL_NAME}/infer")
async def infer(request: Request) -> ORJSONResponse:
    body = await request.json()
    tensor = body["inputs"][0]
    X = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    proba = positive_probability(X)
    return ORJSONResponse({"model_name": MODEL_NAME, "outputs": [
        {"name": "probability", "shape": [len(proba), 1], "datatype": "FP32",
         "data": proba.tolist()}]})
