"""A safetensors file as numpy arrays, with no library beyond numpy (the scripts' own reader)."""
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "U8": np.uint8, "I64": np.int64}


def read_safetensors(path):
    """(tensors by name, the `__metadata__` dict)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], DTYPES[t["dtype"]]).reshape(t["shape"])
    return out, header.get("__metadata__", {})
