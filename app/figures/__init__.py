"""Pure figure builders: DataFrame + settings → a plotly figure spec, shared by the live app and
the HTML export. Specs carry no template: plotly.js's own defaults (white, light grid) are
the look, and a template would add its JSON to every figure.
"""

import base64
import re
from typing import Any

import numpy as np

Figure = dict[str, Any]  # a plotly figure spec: {"data": [traces], "layout": {...}}
TYPED = {  # by numpy dtype (a lookup by dtype, not by its name: str(dtype) costs 12 µs, a figure has hundreds)
    np.dtype(name): short
    for name, short in (
        ("int8", "i1"),
        ("uint8", "u1"),
        ("int16", "i2"),
        ("uint16", "u2"),
        ("int32", "i4"),
        ("uint32", "u4"),
        ("float32", "f4"),
        ("float64", "f8"),
    )
}
AXIS = re.compile(r"[xy]axis[0-9]*")  # a cartesian axis of the layout
NESTED = (np.ndarray, dict, list)  # what encode() looks into; anything else is a plain value


def typed_array(values: np.ndarray) -> dict | np.ndarray:
    """A numeric array as a plotly.js typed array ({dtype, bdata}), floats in single precision;
    other arrays as they are."""
    if values.dtype == np.bool_:
        values = values.astype(np.uint8)
    elif values.dtype == np.float64:
        values = values.astype(
            np.float32
        )  # half the bytes; a figure is drawn to the pixel (or in WebGL's float32) anyway
    elif values.dtype == np.int64 and (values.size == 0 or (values.min() >= -(2**31) and values.max() < 2**31)):
        values = values.astype(np.int32)  # plotly.js has no 64-bit integers
    short = TYPED.get(values.dtype)
    if short is None or values.ndim != 1:
        return values
    return {"dtype": short, "bdata": base64.b64encode(np.ascontiguousarray(values)).decode("ascii")}


def sample_ids(values: np.ndarray) -> list[int]:
    """Sample ids for a selectable trace's customdata, as a plain list: dcc.Graph copies a selected
    point's customdata from the figure it holds, and cannot index a typed array there (a WebGL
    point, which plotly sends without it, would then come back without its sample)."""
    return np.asarray(values).astype(np.int64).tolist()


def decode_array(value: Any) -> np.ndarray | Any:
    """A trace array as a numpy array when it is a typed array ({dtype, bdata}, as the builders
    and the browser hold them); anything else as it is."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return arr.reshape(value["shape"]) if isinstance(value.get("shape"), list) else arr
    return value


def encode(node: Any) -> Any:
    """Any part of a spec as `figure` encodes it (a partial update's values, as the full figure's)."""
    if isinstance(node, np.ndarray):
        return typed_array(node)
    if isinstance(node, dict):
        return {k: encode(v) if isinstance(v, NESTED) and k != "range" else v for k, v in node.items()}
    if isinstance(node, list):
        if node and not isinstance(node[0], NESTED):  # data (sample ids, labels): as it is
            return node
        return [encode(v) for v in node]
    return node


def figure(spec: Figure) -> Figure:
    """A builder's figure, ready for the browser and the snapshot: the plain plotly spec with its
    numeric numpy arrays as plotly.js typed arrays (base64). Plotly's Figure objects validate
    and copy every property, which costs more than building the spec (70 % of the local
    geometry's time); the unit tests validate every builder's output instead. Every axis keeps
    its tick labels where plotly.js places them (ticklabeloverflow "allow", unless the builder
    says otherwise): by default plotly.js measures each label to hide those past the page's
    div, a bounding box a label, which cost the parallel coordinates' axes 0.1 s to draw."""
    layout = spec.get("layout")
    if isinstance(layout, dict):
        for key, axis in layout.items():
            if isinstance(axis, dict) and AXIS.fullmatch(key):
                axis.setdefault("ticklabeloverflow", "allow")
    return encode(spec)
