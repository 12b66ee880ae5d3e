#!/usr/bin/env python3
"""Checks an Ajuste `model.onnx` with ONNX Runtime (an independent runtime; needs `pip install onnxruntime numpy`).

  python3 scripts/check_onnx.py model.onnx [--logits expected.safetensors] [--tol 1e-4]

Runs the ONNX checker (when the `onnx` package is installed), loads the model, checks its input (`input` [batch,3,224,224] float32) and outputs (`logits` [batch,K],
`embedding` [batch,1280]) and its labels metadata, runs the four golden inputs of tests/fixtures (each alone and
all four as one batch: the same logits), and prints each input's top class. With `--logits`, a safetensors file
holding `logits` [4,K] (what `AJUSTE_ONNX_DIR=dir cargo test --release --test onnx` writes next to each model it
exports, from the Rust model), the ONNX Runtime logits must match them within `--tol`. A 1000-class model (the
shipped weights) is compared with the PyTorch goldens' logits instead.
"""
import argparse, json, os, sys

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests/fixtures/golden_shipped.safetensors")

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from safetensors_np import read_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--logits", help="safetensors with the expected `logits` [4,K] of the golden inputs")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()

    try:  # the ONNX checker with shape inference, when the `onnx` package is there
        import onnx
        onnx.checker.check_model(onnx.load(a.model), full_check=True)
        print(f"onnx {onnx.__version__} checker: OK")
    except ImportError:
        pass
    session = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), {o.name: o for o in session.get_outputs()}
    assert [i.name for i in inputs] == ["input"], f"inputs: {[i.name for i in inputs]}"
    assert inputs[0].shape[1:] == [3, 224, 224], f"input shape {inputs[0].shape}"
    assert set(outputs) == {"logits", "embedding"}, f"outputs: {list(outputs)}"
    meta = session.get_modelmeta().custom_metadata_map
    k = outputs["logits"].shape[1]
    labels = json.loads(meta["labels"]) if "labels" in meta else [f"class {i}" for i in range(k)]
    assert len(labels) == k, f"{len(labels)} labels for {k} outputs"
    pixels = meta.get("input", "").startswith("pixels")

    golden = read_safetensors(GOLDEN)[0]
    x = golden["input_u8_hwc"].astype(np.float32).transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x if pixels else (x - 127) / 128)
    logits, embedding = session.run(["logits", "embedding"], {"input": x})
    alone = np.concatenate([session.run(["logits"], {"input": x[i:i + 1]})[0] for i in range(len(x))])
    batch_diff = float(np.abs(alone - logits).max())
    assert batch_diff < a.tol, f"batch of 4 and one at a time differ by {batch_diff}"
    assert embedding.shape == (len(x), 1280), embedding.shape

    expected = None
    if a.logits:
        expected = read_safetensors(a.logits)[0]["logits"]
    elif k == 1000:
        expected = golden["logits"]
    if expected is not None:
        diff = float(np.abs(logits - expected).max())
        print(f"max |logit difference| against {a.logits or 'the PyTorch goldens'}: {diff:.2e}")
        assert diff < a.tol, f"logits differ by {diff} (tolerance {a.tol})"
    for i, row in enumerate(logits):
        p = np.exp(row - row.max()); p /= p.sum()
        print(f"golden input {i}: {labels[int(row.argmax())]} ({p.max():.3f})")
    print(f"OK: {a.model} runs in ONNX Runtime {ort.__version__}, {k} classes, input "
          f"{'pixels 0..255' if pixels else 'preprocessed (u8-127)/128'}")


if __name__ == "__main__":
    sys.exit(main())
