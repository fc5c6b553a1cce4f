"""Hypothesis strategies for V2 inference requests: bodies as a client may send them, valid
or mutated in types, shapes, datatypes, names, nesting, ids, parameters and requested outputs.
Shared by the in-process property tests and the live fuzz test."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import strategies as st

# Example counts come from a profile (HYPOTHESIS_PROFILE, registered in conftest.py): each
# test names its count at the default profile, and `examples` scales it.
PROFILE_SCALE = {"quick": 0.1, "default": 1.0, "thorough": 5.0}


def examples(default_count: int) -> int:
    """How many examples a test runs under the current profile."""
    scale = PROFILE_SCALE[os.environ.get("HYPOTHESIS_PROFILE", "default")]
    return max(10, round(default_count * scale))

FP32_MAX = float(np.finfo(np.float32).max)
DATATYPES = ["FP32", "FP64", "FP16", "INT64", "INT32", "UINT8", "BOOL", "BYTES", "fp32", ""]
NAMES = st.sampled_from(["features", "var_0", "var_199", "var_200", "input-0", ""]) | st.text(
    max_size=12)
NUMBERS = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**70, 2**70)
           | st.booleans() | st.none() | st.text(max_size=4))
FINITE_ROWS = st.integers(1, 5).flatmap(lambda n: st.lists(
    st.lists(st.floats(-FP32_MAX, FP32_MAX, width=32), min_size=200, max_size=200),
    min_size=n, max_size=n))


def shapes():
    return st.lists(st.integers(-3, 401), max_size=4) | st.sampled_from(
        [[1, 200], [2, 200], [200], [1, 199], [0, 200], [2, 100]])


def data_for(shape):
    """Data that fits the shape, or does not: flat, nested, short, long, of any type."""
    size = int(np.prod([max(d, 0) for d in shape])) if shape else 1
    size = min(size, 1_000)
    fitting = st.lists(st.floats(-1e6, 1e6), min_size=size, max_size=size)
    return fitting | st.lists(NUMBERS, max_size=size + 3) | st.lists(
        st.lists(NUMBERS, max_size=5), max_size=4) | NUMBERS


@st.composite
def tensor_inputs(draw):
    shape = draw(shapes())
    return {"name": draw(NAMES), "shape": shape, "datatype": draw(st.sampled_from(DATATYPES)),
            "data": draw(data_for(shape))}


@st.composite
def column_inputs(draw):
    """The 200 named columns, then some of them dropped, duplicated, renamed or reshaped."""
    n = draw(st.integers(0, 3))
    columns = [{"name": f"var_{j}", "shape": [n], "datatype": "FP64", "data": [0.5] * n}
               for j in range(200)]
    for _ in range(draw(st.integers(0, 3))):
        k = draw(st.integers(0, 199))
        change = draw(st.sampled_from(["drop", "duplicate", "rename", "reshape", "retype",
                                       "redata"]))
        if change == "drop":
            columns.pop(k % len(columns))
        elif change == "duplicate":
            columns.append(dict(columns[k % len(columns)]))
        elif change == "rename":
            columns[k % len(columns)]["name"] = draw(NAMES)
        elif change == "reshape":
            columns[k % len(columns)]["shape"] = draw(shapes())
        elif change == "retype":
            columns[k % len(columns)]["datatype"] = draw(st.sampled_from(DATATYPES))
        else:
            columns[k % len(columns)]["data"] = draw(data_for([n]))
    return columns


@st.composite
def valid_tensor(draw):
    rows = draw(st.integers(1, 4))
    return {"name": "features", "shape": [rows, 200],
            "datatype": draw(st.sampled_from(["FP32", "FP64"])),
            "data": draw(st.lists(st.floats(-1e6, 1e6), min_size=200 * rows,
                                  max_size=200 * rows))}


@st.composite
def bodies(draw):
    body = {"inputs": draw(st.lists(valid_tensor(), min_size=1, max_size=1)
                           | st.lists(tensor_inputs(), max_size=3) | column_inputs())}
    if draw(st.booleans()):
        body["id"] = draw(st.text(st.characters(codec="ascii", min_codepoint=32), max_size=40)
                          | st.text(max_size=300)
                          | st.sampled_from(["a\x00b", "x\r\ny", "€", "x" * 257]))
    if draw(st.booleans()):
        body["outputs"] = [{"name": name} for name in draw(st.lists(
            st.sampled_from(["probability", "label", "predict", "predict_proba", "score", ""]),
            max_size=4))]
    if draw(st.booleans()):
        body["parameters"] = draw(st.fixed_dictionaries(
            {}, optional={"content_type": st.sampled_from(["np", "pd", "str", "x"]),
                          "headers": st.fixed_dictionaries(
                              {"content-length": st.sampled_from(["1", "-5", "abc",
                                                                  str(10**12)])})}))
    return body
