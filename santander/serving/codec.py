"""V2 request/response codec for the Santander schema, kept apart from the model.

Accepted inputs (anything else is a 400 naming the problem):
* one tensor of shape [n, 200], FP32 or FP64, any name (e.g. `features`);
* 200 named columns `var_0`..`var_199` (MLServer's pandas codec), each [n] or [n, 1],
  matched by name in any order;
* with either, optionally, the rows' `ID_code`s: a BYTES input of that name, [n] or [n, 1].
  They are not features: the prediction log keeps them, so outcomes can be joined by ID_code.
Outputs: `probability` (FP32) and `label` (INT64, at the tuned threshold) by default; a request
may instead ask for the stock outputs `predict` (label at 0.5) and `predict_proba` ([n, 2]), and
for `contributions` (FP64 [n, 201]: each feature's contribution to the log-odds, then the bias;
santander/serving/explain.py).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, RequestInput, ResponseOutput

from santander.schema import (FEATURE_INDEX, ID_COLUMN, INPUT_DATATYPES, N_FEATURES,
                              OUTPUT_CONTRIBUTIONS, OUTPUT_LABEL, OUTPUT_PROBABILITY)

STOCK_PREDICT = "predict"
STOCK_PREDICT_PROBA = "predict_proba"
DEFAULT_OUTPUTS = (OUTPUT_PROBABILITY, OUTPUT_LABEL)
KNOWN_OUTPUTS = (*DEFAULT_OUTPUTS, STOCK_PREDICT, STOCK_PREDICT_PROBA, OUTPUT_CONTRIBUTIONS)


class RequestError(InferenceError):
    """A request that does not fit the schema: answered with HTTP 400 and this message."""


def _values(request_input: RequestInput, expected_count: int) -> np.ndarray:
    """The input's data as a flat float64 array, refusing anything that is not a finite number."""
    name = request_input.name
    if request_input.datatype not in INPUT_DATATYPES:
        raise RequestError(f"input {name!r} has datatype {request_input.datatype}; "
                           f"expected one of {', '.join(INPUT_DATATYPES)}")
    data = request_input.data.root if hasattr(request_input.data, "root") else request_input.data
    if isinstance(data, (str, bytes)):
        raise RequestError(f"input {name!r}: data must be numbers, got {type(data).__name__}")
    try:
        values = np.asarray(data)
    except ValueError as exc:
        raise RequestError(f"input {name!r}: data is not a regular array ({exc})") from None
    if values.dtype.kind not in "fiu":
        kind = "missing (null)" if values.dtype == object and any(
            v is None for v in values.ravel()) else f"non-numeric ({values.dtype})"
        raise RequestError(f"input {name!r}: data contains {kind} values")
    values = values.astype(np.float64, copy=False).ravel()
    if values.size != expected_count:
        raise RequestError(f"input {name!r}: shape {list(request_input.shape)} needs "
                           f"{expected_count} values, data has {values.size}")
    if not np.isfinite(values).all():
        raise RequestError(f"input {name!r}: data contains non-finite values (NaN or inf)")
    return values


def _check_rows(n: int, max_rows: int | None) -> None:
    if max_rows is not None and n > max_rows:
        raise RequestError(f"request has {n:,} rows; at most {max_rows:,} are accepted per "
                           "request (send more requests, or score files in a batch job)")


def _tensor(request_input: RequestInput, max_rows: int | None) -> np.ndarray:
    shape = list(request_input.shape)
    if len(shape) != 2 or shape[1] != N_FEATURES or shape[0] < 1:
        raise RequestError(f"input {request_input.name!r} has shape {shape}; "
                           f"expected [n, {N_FEATURES}] (n rows of {N_FEATURES} features)")
    _check_rows(shape[0], max_rows)
    return _values(request_input, shape[0] * N_FEATURES).reshape(shape[0], N_FEATURES)


def _columns(inputs: list[RequestInput], max_rows: int | None) -> np.ndarray:
    names = [i.name for i in inputs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise RequestError(f"duplicate input name(s): {', '.join(duplicated)}")
    unknown = [n for n in names if n not in FEATURE_INDEX]
    if unknown:
        raise RequestError(f"unknown input name(s): {', '.join(unknown[:5])}; expected one tensor "
                           f"[n, {N_FEATURES}] or the columns var_0..var_{N_FEATURES - 1}")
    missing = [n for n in FEATURE_INDEX if n not in set(names)]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise RequestError(f"missing {len(missing)} feature column(s): {shown}")
    rows = {i.shape[0] if i.shape else 0 for i in inputs}
    if len(rows) != 1:
        raise RequestError(f"feature columns have different numbers of rows: {sorted(rows)}")
    n = rows.pop()
    _check_rows(n, max_rows)
    X = np.empty((n, N_FEATURES), dtype=np.float64)
    for request_input in inputs:
        shape = list(request_input.shape)
        if shape not in ([n], [n, 1]) or n < 1:
            raise RequestError(f"column {request_input.name!r} has shape {shape}; "
                               f"expected [n] or [n, 1]")
        X[:, FEATURE_INDEX[request_input.name]] = _values(request_input, n)
    return X


MAX_ID_LENGTH = 256


def check_request_id(request: InferenceRequest) -> None:
    """MLServer echoes the request id back: in HTTP response headers (CloudEvents `Ce-Id`) and
    in gRPC response metadata, which carries printable ASCII only. An id they cannot carry
    would drop the connection or fail (INTERNAL "Invalid metadata") after the model ran."""
    request_id = request.id
    if request_id is None:
        return
    if len(request_id) > MAX_ID_LENGTH:
        raise RequestError(f"request id is {len(request_id)} characters long; at most "
                           f"{MAX_ID_LENGTH} are accepted")
    unsafe = sorted({c for c in request_id if not " " <= c <= "~"})
    if unsafe:
        shown = ", ".join(f"U+{ord(c):04X}" for c in unsafe[:5])
        raise RequestError(f"request id contains characters response headers cannot carry "
                           f"({shown}): use printable ASCII characters")


def decode_features(request: InferenceRequest, max_rows: int | None = None) -> np.ndarray:
    """The request's rows as a float32 [n, 200] array, validated against the schema and, if
    given, a maximum number of rows."""
    inputs = [i for i in request.inputs if i.name != ID_COLUMN]
    if not inputs:
        raise RequestError("request has no inputs" if not request.inputs else
                           f"request has only {ID_COLUMN}; the features are missing")
    if len(inputs) == 1 and inputs[0].name not in FEATURE_INDEX:
        X = _tensor(inputs[0], max_rows)
    else:
        X = _columns(inputs, max_rows)
    # Checked once more after the cast: a finite float64 such as 1e39 is inf as float32.
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    if not np.isfinite(X32).all():
        row, column = np.argwhere(~np.isfinite(X32))[0]
        raise RequestError(f"row {row}, feature var_{column}: {X[row, column]:g} is outside the "
                           f"FP32 range (±{np.finfo(np.float32).max:.4g})")
    return X32


MAX_ID_CODE_LENGTH = 64


def decode_id_codes(request: InferenceRequest, n_rows: int) -> list[str] | None:
    """The rows' ID_codes if the request sent them (a BYTES input named ID_code), else None."""
    given = [i for i in request.inputs if i.name == ID_COLUMN]
    if not given:
        return None
    if len(given) > 1:
        raise RequestError(f"duplicate input name(s): {ID_COLUMN}")
    request_input = given[0]
    if request_input.datatype != "BYTES":
        raise RequestError(f"input {ID_COLUMN!r} has datatype {request_input.datatype}; "
                           "expected BYTES (one string per row)")
    shape = list(request_input.shape)
    if shape not in ([n_rows], [n_rows, 1]):
        raise RequestError(f"input {ID_COLUMN!r} has shape {shape}; expected [{n_rows}] or "
                           f"[{n_rows}, 1], one per row")
    data = request_input.data.root if hasattr(request_input.data, "root") else request_input.data
    values = data if isinstance(data, list) else [data]
    # [n, 1] may come nested, one list per row.
    values = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
    if len(values) != n_rows:
        raise RequestError(f"input {ID_COLUMN!r} has {len(values)} value(s) for {n_rows} rows")
    codes = []
    for value in values:
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise RequestError(f"input {ID_COLUMN!r}: a value is not UTF-8") from None
        if not isinstance(value, str) or len(value) > MAX_ID_CODE_LENGTH:
            raise RequestError(f"input {ID_COLUMN!r}: each value must be a string of at most "
                               f"{MAX_ID_CODE_LENGTH} characters")
        codes.append(value)
    return codes


def requested_outputs(request: InferenceRequest) -> tuple[str, ...]:
    if not request.outputs:
        return DEFAULT_OUTPUTS
    names = tuple(dict.fromkeys(o.name for o in request.outputs))
    unknown = [n for n in names if n not in KNOWN_OUTPUTS]
    if unknown:
        raise RequestError(f"unknown output(s) {', '.join(unknown)}; "
                           f"available: {', '.join(KNOWN_OUTPUTS)}")
    return names


def encode_outputs(names: Iterable[str], proba: np.ndarray, threshold: float,
                   contributions: np.ndarray | None = None) -> list[ResponseOutput]:
    """Flat data with explicit shapes, so MLServer's batcher can split rows per request.
    `contributions` ([n, 201]) is needed only when its output is asked for."""
    n = len(proba)
    encoders: dict[str, Any] = {
        OUTPUT_PROBABILITY: lambda: ("FP32", [n, 1], proba.astype(np.float32).tolist()),
        OUTPUT_LABEL: lambda: ("INT64", [n, 1], (proba >= threshold).astype(np.int64).tolist()),
        STOCK_PREDICT: lambda: ("INT64", [n, 1], (proba >= 0.5).astype(np.int64).tolist()),
        STOCK_PREDICT_PROBA: lambda: ("FP32", [n, 2], np.column_stack(
            [1 - proba, proba]).astype(np.float32).ravel().tolist()),
        OUTPUT_CONTRIBUTIONS: lambda: ("FP64", list(contributions.shape),
                                       contributions.astype(np.float64).ravel().tolist()),
    }
    outputs = []
    for name in names:
        datatype, shape, data = encoders[name]()
        outputs.append(ResponseOutput(name=name, datatype=datatype, shape=shape, data=data))
    return outputs
