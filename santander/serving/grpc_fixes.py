"""MLServer's gRPC request conversion, made to refuse what it cannot read: a 400-class answer
(INVALID_ARGUMENT) instead of INTERNAL.

MLServer 1.7.1, its last release, unpacks `raw_input_contents` in
`ModelInferRequestConverter.to_types`, before any runtime code runs. Raw contents that do not
fit their input (a byte count that is not the datatype's size times the values, fewer raw
entries than inputs, a malformed BYTES element) raise struct.error or IndexError there, and
its servicer answers those with INTERNAL. `install` wraps that one converter so they become
an `InferenceError` naming the problem. Another V2 server does not need this; MLServer changing
it is caught by tests/test_mlserver_reliance.py.
"""

from __future__ import annotations

import struct

from mlserver.errors import InferenceError
from mlserver.grpc import converters


def install() -> None:
    """Idempotent: MLServer re-imports the runtime module on every model load."""
    converter = converters.ModelInferRequestConverter
    if getattr(converter.to_types, "refuses_unreadable_raw", False):
        return
    original = converter.to_types.__func__

    def to_types(cls, pb_object):
        try:
            return original(cls, pb_object)
        except (struct.error, IndexError, ValueError, TypeError) as exc:
            raise InferenceError(f"raw_input_contents do not fit the inputs they belong to "
                                 f"({len(pb_object.raw_input_contents)} raw entries for "
                                 f"{len(pb_object.inputs)} inputs): {exc}") from None

    to_types.refuses_unreadable_raw = True
    converter.to_types = classmethod(to_types)
