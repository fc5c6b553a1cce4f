"""The one client of the Open Inference (V2) REST protocol and of the model repository API:
infer, metadata, readiness, and which versions are loaded; load and unload. `request.py`, the
CLI, the page (santander/app/) and the tests speak through it; it knows nothing of training
or of MLServer's internals, so any V2 server answers it (the repository calls, any server that
has Triton's repository extension, as MLServer does). gRPC goes through tritonclient
(`request.py --grpc`)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from santander.errors import SantanderError
from santander.layout import version_order

DEFAULT_OUTPUTS = ("probability", "label")
TOP_FEATURES = 5


class ClientError(SantanderError):
    """A failed request, reported as one line."""


# What to do when nothing answers: the end of an "unreachable" error line.
START_A_SERVER = ("start one with `python -m santander serve` (after `make run`, which trains "
                  "a version)")


# The operator's token: the deploy image's front passes load and unload only with it
# (deploy/front/). Read from the environment, never from an argument (argv is visible to all).
ADMIN_TOKEN_ENV = "SANTANDER_ADMIN_TOKEN"
PERMISSION_PROBE = "santander-permission-probe"      # a model name no repository has


class V2Client:
    def __init__(self, url: str, timeout: float = 30.0, token: str | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get(ADMIN_TOKEN_ENV) or None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON body or text); ClientError if nothing answers."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token and path.startswith("/v2/repository/"):   # sent only where it is needed
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach {self.url}{path}: {getattr(exc, 'reason', exc)}; "
                              f"{START_A_SERVER}, or pass the right --url") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def _ok(self, method: str, path: str, body: dict | None = None) -> Any:
        status, answer = self.call(method, path, body)
        if status != 200:
            raise ClientError(f"HTTP {status} from {self.url}{path}: {error_message(answer)}")
        return answer

    def infer(self, model: str, version: str | None, X: np.ndarray,
              request_id: str | None = None, outputs: tuple[str, ...] = DEFAULT_OUTPUTS,
              id_codes: list[str] | None = None) -> dict[str, Any]:
        """`id_codes`, one per row, go along as a BYTES input: the prediction log keeps them."""
        inputs = [{"name": "features", "shape": list(X.shape), "datatype": "FP64",
                   "data": np.asarray(X).ravel().tolist()}]
        if id_codes is not None:
            inputs.append({"name": "ID_code", "shape": [len(id_codes)], "datatype": "BYTES",
                           "data": list(id_codes)})
        body = {"inputs": inputs, "outputs": [{"name": name} for name in outputs]}
        if request_id:
            body["id"] = request_id
        return self._ok("POST", _model_path(model, version) + "/infer", body)

    def metadata(self, model: str, version: str | None = None) -> dict[str, Any]:
        """The model's V2 metadata; this project's runtime puts the threshold and the model
        card in its `parameters`."""
        return self._ok("GET", _model_path(model, version))

    def live(self) -> bool:
        try:
            return self.call("GET", "/v2/health/live")[0] == 200
        except ClientError:
            return False

    def ready(self, model: str, version: str | int | None = None) -> bool:
        try:
            return self.call("GET", _model_path(model, version) + "/ready")[0] == 200
        except ClientError:
            return False

    def loaded_versions(self, model: str) -> list[str]:
        """The versions the repository index lists for `model` that answer ready, oldest
        first."""
        index = self._ok("POST", "/v2/repository/index", {})
        listed = {str(item.get("version")) for item in index
                  if item.get("name") == model and item.get("version")}
        return sorted((v for v in listed if self.ready(model, v)), key=version_order)

    def load(self, model: str) -> None:
        """Serve every version the repository offers for `model`; unload the rest."""
        self._ok("POST", f"/v2/repository/models/{model}/load")

    def may_change(self) -> None:
        """ClientError unless this caller may load and unload here: the deploy image's front
        passes them only to the operator (deploy/front/). Asked by unloading a model no
        repository has, which changes nothing."""
        status, answer = self.call("POST", f"/v2/repository/models/{PERMISSION_PROBE}/unload")
        if status in (401, 403):
            raise ClientError(f"HTTP {status} from {self.url}: {error_message(answer)}")

    def unload(self, model: str) -> None:
        """Stop serving `model` (not loaded: nothing to do)."""
        status, answer = self.call("POST", f"/v2/repository/models/{model}/unload")
        if status not in (200, 404):
            raise ClientError(f"HTTP {status} from {self.url}: could not unload {model!r}: "
                              f"{error_message(answer)}")


def _model_path(model: str, version: str | int | None) -> str:
    return f"/v2/models/{model}" + (f"/versions/{version}" if version else "")


def error_message(answer: Any) -> str:
    """A V2 error body's message (`{"error": ...}`), or the body itself, in one line."""
    if isinstance(answer, dict):
        return str(answer.get("error") or answer.get("detail") or answer)
    return str(answer)[:300]


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
    client = V2Client(url)
    try:
        versions = client.loaded_versions(model)
        response = client.infer(model, None, X, request_id="notebook", id_codes=id_codes)
    except ClientError as exc:          # its message says how to start a server
        return f"No server answers at {url}: {exc}.\nThen run this cell again."
    outputs = {o["name"]: o["data"] for o in response["outputs"]}
    names = id_codes or [f"row_{i}" for i in range(len(X))]
    lines = [f"{url} serves version(s) {', '.join(versions)} of {model}; version "
             f"{response.get('model_version')} answered:"]
    lines += [f"  {name}: probability {p:.4f}  label {label}"
              for name, p, label in zip(names, outputs["probability"], outputs["label"])]
    return "\n".join(lines)
