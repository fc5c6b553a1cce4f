"""What one request may ask of the server: rows and bytes. Past either, a request is refused
with a status and a message naming the limit.

The limits live in a version's `model-settings.json` (`parameters.extra.limits`, written by
export from santander.config); a version exported before they existed gets the defaults.
- Rows per request: checked on the request's declared shape, before its data is copied (400).
- Body size: gRPC refuses a message over `grpc_max_message_length` (deploy/settings.json)
  before reading it. Over REST, MLServer reads and parses the body before any runtime code
  runs, so the runtime can only refuse it afterwards, from the `Content-Length` header that
  MLServer hands over with the request (413): the model never sees it, but the parsing was
  paid. A front proxy (an ingress's body-size limit) stops it before the server reads it.

No time limit is kept here: the model runs on the event loop, where a call cannot be
interrupted once started, and the row limit already bounds how long one call takes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fastapi import status
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest

from santander.config import MAX_REQUEST_BYTES, MAX_REQUEST_ROWS
from santander.errors import ArtifactError


class PayloadTooLarge(MLServerError):
    def __init__(self, msg: str):
        super().__init__(msg, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


@dataclass(frozen=True)
class RequestLimits:
    max_rows: int = MAX_REQUEST_ROWS
    max_body_bytes: int = MAX_REQUEST_BYTES

    @classmethod
    def from_settings(cls, extra: dict[str, Any]) -> "RequestLimits":
        given = extra.get("limits") or {}
        unknown = sorted(set(given) - set(asdict(cls())))
        if unknown:
            raise ArtifactError(f"unknown request limit(s): {', '.join(unknown)}")
        limits = cls(**given)
        for name, value in asdict(limits).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ArtifactError(f"request limit {name} must be a positive number, "
                                    f"got {value!r}")
        return limits

    def check_body(self, request: InferenceRequest) -> None:
        """Refuse a REST body over the limit, by the Content-Length MLServer passes on."""
        headers = (request.parameters.headers or {}) if request.parameters else {}
        declared = {k.lower(): v for k, v in headers.items()}.get("content-length")
        try:
            size = int(declared) if declared is not None else 0
        except (TypeError, ValueError):
            return
        if size > self.max_body_bytes:
            raise PayloadTooLarge(f"request body is {size:,} bytes; at most "
                                  f"{self.max_body_bytes:,} are accepted")
