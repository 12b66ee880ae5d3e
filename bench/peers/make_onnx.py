#!/usr/bin/env python3
"""Builds effl0_embed.onnx, the EfficientNet-Lite0 feature extractor the ONNX Runtime Web cases run, from the weights
the app ships (stdlib only: the ONNX protobuf is written by hand below).

  python3 make_onnx.py [--weights public/models/efficientnet_lite0.safetensors] [--out effl0_embed.onnx]

Graph (opset 17): input `input` f32 [batch,3,224,224] -> `embedding` f32 [batch,1280]. Each conv + batch norm is
one Conv with the BN folded in (w * g/sqrt(v+eps), b - m*g/sqrt(v+eps), in float64, stored f32) and TF 'SAME'
padding as the Conv's own (asymmetric) `pads`; ReLU6 is Clip(0, 6); residual Add; ReduceMean over H,W. The
architecture is the table in tests/fixtures/README.md (scripts/effl0.py in PyTorch).
"""
import argparse, array, hashlib, json, math, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# (repeats, kernel, stride, expand, cin, cout), as scripts/effl0.py
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
BN_EPS = 1e-3
FLOAT, INT, INTS = 1, 2, 7  # TensorProto.FLOAT, AttributeProto.INT / INTS


# ---- protobuf wire format (varints, length-delimited fields, fixed32 floats) ----
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def f_int(field, v):
    return varint(field << 3) + varint(v)


def f_bytes(field, data):
    data = data.encode() if isinstance(data, str) else data
    return varint(field << 3 | 2) + varint(len(data)) + data


def tensor(name, dims, raw):  # TensorProto: dims 1, data_type 2, name 8, raw_data 9
    return b"".join(f_int(1, d) for d in dims) + f_int(2, FLOAT) + f_bytes(8, name) + f_bytes(9, raw)


def attr(name, value):  # AttributeProto: name 1, i 3, ints 8, type 20
    if isinstance(value, int):
        return f_bytes(1, name) + f_int(3, value) + f_int(20, INT)
    return f_bytes(1, name) + b"".join(f_int(8, v) for v in value) + f_int(20, INTS)


def node(op, inputs, outputs, name, **attrs):  # NodeProto: input 1, output 2, name 3, op_type 4, attribute 5
    return (b"".join(f_bytes(1, i) for i in inputs) + b"".join(f_bytes(2, o) for o in outputs)
            + f_bytes(3, name) + f_bytes(4, op) + b"".join(f_bytes(5, attr(k, v)) for k, v in attrs.items()))


def value_info(name, dims):  # ValueInfoProto{name 1, type 2: TypeProto{tensor_type 1: {elem_type 1, shape 2}}}
    dim = b"".join(f_bytes(1, f_bytes(2, d) if isinstance(d, str) else f_int(1, d)) for d in dims)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, f_int(1, FLOAT) + f_bytes(2, dim)))


# ---- weights ----
def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        data = raw[8 + n + a:8 + n + b]
        if t["dtype"] == "F32":
            values = array.array("f", data)
        elif t["dtype"] == "F16":
            values = array.array("f", struct.unpack(f"<{len(data) // 2}e", data))
        else:
            raise ValueError(f"{path}: {name} has dtype {t['dtype']}, expected F32 or F16")
        out[name] = (t["shape"], values)
    return out


def tf_same_pads(size, k, s):
    """ONNX Conv pads [top, left, bottom, right] for TF 'SAME' on a square input; returns (pads, out size)."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return [total // 2, total // 2, total - total // 2, total - total // 2], out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=os.path.join(ROOT, "public/models/efficientnet_lite0.safetensors"))
    ap.add_argument("--out", default=os.path.join(HERE, "effl0_embed.onnx"))
    a = ap.parse_args()
    w = read_safetensors(a.weights)
    nodes, inits = [], []
    inits.append(tensor("relu6_min", [], struct.pack("<f", 0.0)))
    inits.append(tensor("relu6_max", [], struct.pack("<f", 6.0)))

    def conv_bn(prefix, x, size, k, s, groups, relu6):
        shape, weight = w[f"{prefix}.conv.weight"]
        g, b, m, v = (w[f"{prefix}.bn.{t}"][1] for t in ("weight", "bias", "running_mean", "running_var"))
        per_out = len(weight) // shape[0]
        scale = [g[o] / math.sqrt(v[o] + BN_EPS) for o in range(shape[0])]
        folded = array.array("f", (weight[i] * scale[i // per_out] for i in range(len(weight))))
        bias = array.array("f", (b[o] - m[o] * scale[o] for o in range(shape[0])))
        inits.append(tensor(f"{prefix}.w", shape, folded.tobytes()))
        inits.append(tensor(f"{prefix}.b", [shape[0]], bias.tobytes()))
        pads, out_size = tf_same_pads(size, k, s)
        y = f"{prefix}.conv"
        nodes.append(node("Conv", [x, f"{prefix}.w", f"{prefix}.b"], [y], y, group=groups,
                          kernel_shape=[k, k], strides=[s, s], pads=pads))
        if relu6:
            nodes.append(node("Clip", [y, "relu6_min", "relu6_max"], [f"{prefix}.relu6"], f"{prefix}.relu6"))
            y = f"{prefix}.relu6"
        return y, out_size

    x, size = conv_bn("stem", "input", 224, 3, 2, 1, True)
    i = 0
    for repeats, k, stride, e, cin, cout in STAGES:
        for r in range(repeats):
            c_in, s = (cin, stride) if r == 0 else (cout, 1)
            p = f"blocks.{i}"
            h = x
            if e != 1:
                h, _ = conv_bn(f"{p}.expand", h, size, 1, 1, 1, True)
            h, out_size = conv_bn(f"{p}.dw", h, size, k, s, c_in * e, True)
            h, _ = conv_bn(f"{p}.project", h, out_size, 1, 1, 1, False)
            if s == 1 and c_in == cout:
                nodes.append(node("Add", [x, h], [f"{p}.add"], f"{p}.add"))
                h = f"{p}.add"
            x, size, i = h, out_size, i + 1
    x, _ = conv_bn("head", x, size, 1, 1, 1, True)
    nodes.append(node("ReduceMean", [x], ["embedding"], "pool", axes=[2, 3], keepdims=0))

    graph = (b"".join(f_bytes(1, n) for n in nodes) + f_bytes(2, "effl0_embed")
             + b"".join(f_bytes(5, t) for t in inits)
             + f_bytes(11, value_info("input", ["batch", 3, 224, 224]))
             + f_bytes(12, value_info("embedding", ["batch", 1280])))
    sha = hashlib.sha256(open(a.weights, "rb").read()).hexdigest()
    meta = f_bytes(1, "weights_sha256") + f_bytes(2, sha)
    model = (f_int(1, 8) + f_bytes(2, "ajuste bench/peers/make_onnx.py") + f_bytes(3, "1")
             + f_bytes(7, graph) + f_bytes(8, f_bytes(1, "") + f_int(2, 17)) + f_bytes(14, meta))
    with open(a.out, "wb") as f:
        f.write(model)
    print(f"wrote {a.out}: {len(model)} bytes, {len(nodes)} nodes, from {os.path.basename(a.weights)} (sha256 {sha})")


if __name__ == "__main__":
    main()
