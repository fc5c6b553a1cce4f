"""The plain-FastAPI peer: a typical hand-written service, the booster loaded once.

    BENCH_MODEL=model.ubj uvicorn bench.fastapi_peer:app --port 8000

It speaks just enough V2 (a `features` tensor in, `probability` out) for the same load.
"""

from __future__ import annotations

import os

import numpy as np
import xgboost
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

from santander.config import MODEL_NAME

booster = xgboost.Booster(model_file=os.environ["BENCH_MODEL"])
booster.set_param({"nthread": 1})
app = FastAPI()


@app.get(f"/v2/models/{MODEL_NAME}/ready")
async def ready() -> dict:
    return {}


@app.post(f"/v2/models/{MODEL_NAME}/infer")
async def infer(request: Request) -> ORJSONResponse:
    body = await request.json()
    tensor = body["inputs"][0]
    X = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    proba = booster.inplace_predict(X)
    return ORJSONResponse({"model_name": MODEL_NAME, "outputs": [
        {"name": "probability", "shape": [len(proba), 1], "datatype": "FP32",
         "data": proba.tolist()}]})
