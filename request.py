"""Send Santander rows to the served model over the Open Inference (V2) protocol.

    python request.py                              one row of the built-in data, REST
    python request.py --data train.csv --rows 8    a batch from a CSV/parquet file
    python request.py --grpc                       the same over gRPC (port 8081)
    python request.py --version 2                  one version of the model
    python request.py --compare --rows 5           every loaded version, side by side
    python request.py --explain --rows 3           each row's top 5 features (log-odds)

Speaks V2 only and knows nothing of training; any V2 client can do what it does.
Exits 0 with the answer, 2 with one line saying what went wrong and what to do (as the
santander CLI does).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

import numpy as np

from santander.layout import version_order
from santander.v2_client import (DEFAULT_OUTPUTS, START_A_SERVER, TOP_FEATURES, ClientError,
                                 V2Client, top_features)

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_GRPC = "127.0.0.1:8081"
DEFAULT_MODEL = "xgboost-model"
EXPLAIN_OUTPUTS = (*DEFAULT_OUTPUTS, "contributions")


def load_rows(path: str | None, rows: int,
              seed: int) -> tuple[np.ndarray, list[str], list[str] | None]:
    """(rows, a label per row for printing, the rows' ID_codes or None if the file has none)."""
    from santander.frames import load_features
    if path is None:
        from santander.training.data.synthetic import generate
        frame = generate(rows, seed=seed)
        ids = frame["ID_code"].tolist()
        return frame.filter(like="var_").to_numpy(np.float64), ids, ids
    X, codes = load_features(path, rows=rows)
    if codes is None:
        return X, [f"row_{i}" for i in range(len(X))], None
    return X, list(codes), list(codes)


def infer_grpc(address: str, model: str, version: str | None, X: np.ndarray,
               request_id: str | None = None,
               outputs: tuple[str, ...] = DEFAULT_OUTPUTS,
               id_codes: list[str] | None = None) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
    try:
        client = grpcclient.InferenceServerClient(address)
        tensor = grpcclient.InferInput("features", list(X.shape), "FP64")
        tensor.set_data_from_numpy(X.astype(np.float64))
        tensors = [tensor]
        if id_codes is not None:
            codes = grpcclient.InferInput("ID_code", [len(id_codes)], "BYTES")
            codes.set_data_from_numpy(np.array(id_codes, dtype=object))
            tensors.append(codes)
        result = client.infer(model, tensors, model_version=version or "",
                              request_id=request_id or "",
                              outputs=[grpcclient.InferRequestedOutput(n) for n in outputs])
    except InferenceServerException as exc:
        raise grpc_error(address, exc) from None
    response = result.get_response()
    return {"id": response.id, "model_name": response.model_name,
            "model_version": response.model_version,
            "outputs": [{"name": o.name, "data": result.as_numpy(o.name).ravel().tolist()}
                        for o in response.outputs]}


def grpc_error(address: str, exc) -> ClientError:
    """One line for a failed gRPC call; an unreachable server says how to start one."""
    unreachable = "UNAVAILABLE" in str(exc.status())
    return ClientError(f"gRPC {address}: {exc.message()}"
                       + (f"; {START_A_SERVER}, or pass the right --grpc HOST:PORT"
                          if unreachable else ""))


def loaded_versions_grpc(address: str, model: str) -> list[str]:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
    try:
        client = grpcclient.InferenceServerClient(address)
        index = client.get_model_repository_index(as_json=True).get("models", [])
        listed = {m.get("version") for m in index if m.get("name") == model and m.get("version")}
        ready = [v for v in listed if client.is_model_ready(model, v)]
    except InferenceServerException as exc:
        raise grpc_error(address, exc) from None
    return sorted(ready, key=version_order)


def print_comparison(answers: dict[str, dict[str, Any]], ids: list[str]) -> None:
    versions = list(answers)
    print(f"{len(ids)} row(s), versions {', '.join(versions)} (the newest answers /infer)")
    print(f"{'row':<14}" + "".join(f"{'v' + v + ' probability':>18}{'label':>6}" for v in versions))
    for i, row_id in enumerate(ids):
        cells = []
        for version in versions:
            outputs = {o["name"]: o["data"] for o in answers[version]["outputs"]}
            cells.append(f"{outputs['probability'][i]:>18.4f}{outputs['label'][i]:>6}")
        print(f"{row_id:<14}" + "".join(cells))


def print_answer(response: dict[str, Any], ids: list[str]) -> None:
    outputs = {o["name"]: o["data"] for o in response["outputs"]}
    print(f"id {response.get('id') or '-'}  model {response.get('model_name')} "
          f"version {response.get('model_version')}")
    tops = (top_features(outputs["contributions"], len(ids)) if "contributions" in outputs
            else None)
    for i, row_id in enumerate(ids):
        print(f"{row_id}: probability {outputs['probability'][i]:.4f}  label {outputs['label'][i]}")
        if tops:
            print("    " + "  ".join(f"{name} {value:+.3f}" for name, value in tops[i]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV or parquet with var_0..var_199 (default: built-in)")
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="built-in data seed")
    parser.add_argument("--url", default=DEFAULT_URL, help="REST base URL")
    parser.add_argument("--grpc", nargs="?", const=DEFAULT_GRPC, default=None,
                        metavar="HOST:PORT", help=f"use gRPC (default {DEFAULT_GRPC})")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--version", default=None)
    parser.add_argument("--compare", action="store_true",
                        help="send the rows to every loaded version; print answers side by side")
    parser.add_argument("--explain", action="store_true",
                        help=f"also ask for each row's contributions; print the top "
                             f"{TOP_FEATURES} features in log-odds")
    parser.add_argument("--id", default=None,
                        help="request id, echoed back (default: a fresh one per call; the "
                        "prediction log and `santander compare` tell requests apart by it)")
    args = parser.parse_args(argv)
    args.id = args.id or f"request-py-{uuid.uuid4().hex[:12]}"
    outputs = EXPLAIN_OUTPUTS if args.explain else DEFAULT_OUTPUTS
    try:
        if args.rows < 1:
            raise ClientError("--rows must be at least 1")
        if args.compare and args.explain:
            raise ClientError("--explain shows one version's answer; leave out --compare")
        X, ids, id_codes = load_rows(args.data, args.rows, args.seed)
        if args.compare:
            if args.grpc:
                versions = loaded_versions_grpc(args.grpc, args.model)
                ask = lambda v: infer_grpc(args.grpc, args.model, v, X, args.id,  # noqa: E731
                                           id_codes=id_codes)
            else:
                versions = V2Client(args.url).loaded_versions(args.model)
                ask = lambda v: V2Client(args.url).infer(  # noqa: E731
                    args.model, v, X, args.id, id_codes=id_codes)
            if not versions:
                raise ClientError(f"no loaded versions of {args.model}")
            print_comparison({v: ask(v) for v in versions}, ids)
        elif args.grpc:
            print_answer(infer_grpc(args.grpc, args.model, args.version, X, args.id,
                                    outputs=outputs, id_codes=id_codes), ids)
        else:
            print_answer(V2Client(args.url).infer(args.model, args.version, X, args.id,
                                                  outputs=outputs, id_codes=id_codes), ids)
    except Exception as exc:  # a refused request, a bad data file: one line either way
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
