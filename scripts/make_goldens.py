#!/usr/bin/env python3
"""Makes tests/fixtures/golden_shipped.safetensors: the PyTorch reference (scripts/effl0.py) run on the shipped
weights (public/models/efficientnet_lite0.safetensors, fp16 convs widened to fp32, BN in fp32) for the four golden
inputs, on the CPU in fp32. Needs torch, numpy and Pillow (the GPU machine has them); the file is written by the
small safetensors writer below, so the `safetensors` package is not needed.

  python3 scripts/make_goldens.py [--weights W] [--images DIR] [--out FILE] [--compare golden_fp32.safetensors]

--compare prints how far these goldens are from other goldens (e.g. the fp32-weight ones): the cost of fp16 storage.
"""
import argparse, hashlib, json, os, struct, sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from effl0 import EfficientNetLite0  # noqa: E402
from safetensors_np import DTYPES, read_safetensors  # noqa: E402

NAMES = ["gradient", "random_seed0", "chelsea_cat", "coffee"]


def write_safetensors(path, tensors, metadata):
    """8-byte little-endian header length, JSON header (padded to 8 bytes), then the raw little-endian data."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dtype = {v: k for k, v in DTYPES.items()}[a.dtype.type]
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=os.path.join(ROOT, "public/models/efficientnet_lite0.safetensors"))
    ap.add_argument("--images", default=os.path.join(ROOT, "tests/fixtures/golden"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/golden_shipped.safetensors"))
    ap.add_argument("--compare", default=None)
    a = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    weights, _ = read_safetensors(a.weights)
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in weights.items()}  # fp16 -> fp32 is exact
    model = EfficientNetLite0().eval()
    model.load_state_dict(state, strict=True)

    u8 = np.stack([np.asarray(Image.open(os.path.join(a.images, f"{n}.png")).convert("RGB")) for n in NAMES])
    assert u8.shape == (4, 224, 224, 3) and u8.dtype == np.uint8, u8.shape
    # (u8 - 127) / 128 is exact in fp32, so the tests rebuild this input from the u8 bytes bit for bit.
    x = torch.from_numpy(((u8.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2).copy())

    with torch.no_grad():
        taps = {}
        embedding, logits = model(x, taps)
        out = {"input_u8_hwc": u8, "embedding": embedding.numpy(), "logits": logits.numpy()}
        for name in ["stem"] + [f"block{i}" for i in range(16)]:
            out[f"debug.{name}_chmean"] = taps[name].mean(dim=(2, 3)).numpy()
        if torch.cuda.is_available():  # a second implementation of every op, as a sanity check
            gpu_emb, gpu_logits = model.cuda()(x.cuda())
            print("GPU (TF32 off) vs CPU: max |d embedding| %.2e, max |d logits| %.2e" % (
                (gpu_emb.cpu() - embedding).abs().max().item(), (gpu_logits.cpu() - logits).abs().max().item()))

    probs = torch.softmax(logits, -1)
    top1 = probs.argmax(-1).tolist()
    for n, i, p in zip(NAMES, top1, probs.max(-1).values.tolist()):
        print(f"{n}: top-1 {i} p={p:.3f}")
    metadata = {
        "names": json.dumps(NAMES),
        "weights": os.path.basename(a.weights),
        "weights_sha256": hashlib.sha256(open(a.weights, "rb").read()).hexdigest(),
        "model": "scripts/effl0.py: efficientnet-lite0 tf_same padding relu6 bn_eps=1e-3",
        "preprocess": "x = (u8 - 127.0) / 128.0, RGB, NCHW float32 (input_u8_hwc holds the u8, NHWC)",
        "torch": torch.__version__,
        "device": "cpu",
        "top1": json.dumps(top1),
    }
    write_safetensors(a.out, out, metadata)
    back, _ = read_safetensors(a.out)
    assert all(np.array_equal(back[k], out[k]) for k in out)
    try:
        from safetensors.numpy import load_file  # an independent reader, where installed
        theirs = load_file(a.out)
        assert all(np.array_equal(theirs[k], out[k]) for k in out)
        print("safetensors package reads it back identically")
    except ImportError:
        print("safetensors package not installed: read back with this script's reader only")
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes")

    if a.compare:
        other, _ = read_safetensors(a.compare)
        if "input_u8_hwc" in other:
            print("same decoded inputs as --compare:", np.array_equal(other["input_u8_hwc"], u8))
        for k in ["embedding", "logits"] + [k for k in out if k.startswith("debug.")]:
            if k in other:
                d = np.abs(other[k].astype(np.float64) - out[k]).max()
                print(f"vs --compare {k}: max |diff| {d:.4g}")


if __name__ == "__main__":
    main()
