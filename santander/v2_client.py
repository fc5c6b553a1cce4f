"""A small Open Inference (V2) REST client: infer, list the loaded versions, read an
explanation. `request.py` and the app (santander/app/) both speak through it; it knows
nothing of training or of MLServer's internals, so any V2 server answers it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from santander.layout import version_order

DEFAULT_OUTPUTS = ("probability", "label")
TOP_FEATURES = 5


class ClientError(Exception):
    """A failed request, reported as one line."""


# What to do when nothing answers: the end of an "unreachable" error line.
START_A_SERVER = ("start one with `python -m santander serve` (after `make run`, which trains "
                  "a version)")


def infer_rest(url: str, model: str, version: str | None, X: np.ndarray,
               request_id: str | None = None, timeout: float = 30.0,
               outputs: tuple[str, ...] = DEFAULT_OUTPUTS,
               id_codes: list[str] | None = None) -> dict[str, Any]:
    """`id_codes`, one per row, go along as a BYTES input: the prediction log keeps them."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    inputs = [{"name": "features", "shape": list(X.shape), "datatype": "FP64",
               "data": X.ravel().tolist()}]
    if id_codes is not None:
        inputs.append({"name": "ID_code", "shape": [len(id_codes)], "datatype": "BYTES",
                       "data": list(id_codes)})
    body = {"inputs": inputs, "outputs": [{"name": name} for name in outputs]}
    if request_id:
        body["id"] = request_id
    return _call(url, path, body, timeout)


def metadata_rest(url: str, model: str, version: str | None,
                  timeout: float = 30.0) -> dict[str, Any]:
    """The model's V2 metadata; this project's runtime puts the threshold and the model card
    in its `parameters`."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "")
    return _call(url, path, None, timeout)


def _call(url: str, path: str, body: dict | None, timeout: float) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url.rstrip("/") + path, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise ClientError(f"HTTP {exc.code} from {url}{path}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(f"cannot reach {url}{path}: {reason}; {START_A_SERVER}, "
                          "or pass the right --url") from None


def loaded_versions_rest(url: str, model: str) -> list[str]:
    """Versions the repository index lists for `model` that answer ready, oldest first."""
    request = urllib.request.Request(url.rstrip("/") + "/v2/repository/index", data=b"{}",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            index = json.loads(response.read())
    except (urllib.error.URLError, OSError) as exc:
        raise ClientError(f"cannot list versions at {url}: {getattr(exc, 'reason', exc)}; "
                          f"{START_A_SERVER}, or pass the right --url") from None
    listed = {str(item.get("version")) for item in index
              if item.get("name") == model and item.get("version")}
    ready = []
    for version in listed:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/v2/models/{model}/versions/"
                                        f"{version}/ready", timeout=10) as response:
                if response.status == 200:
                    ready.append(version)
        except (urllib.error.URLError, OSError):
            pass
    return sorted(ready, key=version_order)


def top_features(contributions: list[float], n_rows: int) -> list[list[tuple[str, float]]]:
    """Each row's TOP_FEATURES largest contributions by size, as (feature, log-odds); the
    last column is the bias, not a feature."""
    table = np.asarray(contributions, dtype=np.float64).reshape(n_rows, -1)[:, :-1]
    order = np.argsort(-np.abs(table), axis=1, kind="stable")[:, :TOP_FEATURES]
    return [[(f"var_{j}", float(table[i, j])) for j in order[i]] for i in range(n_rows)]


def ask_served_model(url: str, model: str, X: np.ndarray,
                     id_codes: list[str] | None = None) -> str:
    """What the served model answers for the rows, in lines to print; or, when no server
    answers at `url`, how to start one. The notebook's last cell."""
    try:
        versions = loaded_versions_rest(url, model)
        response = infer_rest(url, model, None, X, request_id="notebook", id_codes=id_codes)
    except ClientError as exc:          # its message says how to start a server
        return f"No server answers at {url}: {exc}.\nThen run this cell again."
    outputs = {o["name"]: o["data"] for o in response["outputs"]}
    names = id_codes or [f"row_{i}" for i in range(len(X))]
    lines = [f"{url} serves version(s) {', '.join(versions)} of {model}; version "
             f"{response.get('model_version')} answered:"]
    lines += [f"  {name}: probability {p:.4f}  label {label}"
              for name, p, label in zip(names, outputs["probability"], outputs["label"])]
    return "\n".join(lines)
