#!/usr/bin/env python3
"""Checks Ajuste's `model.tflite` and `model_int8.tflite` with the TFLite interpreter from PyPI (LiteRT:
`pip install ai-edge-litert numpy pillow`; `tflite-runtime` works too), and with MediaPipe's ImageClassifier
when `mediapipe` is installed.

  python3 scripts/check_tflite.py model.tflite [--probabilities expected.safetensors] [--tol 1e-4]
      [--int8 model_int8.tflite] [--data bench/data/letters26 --split test] [--no-mediapipe]

Reads each model's input, output and metadata (the labels file packed in the model, the normalisation), runs
the four golden inputs of tests/fixtures and prints their top class. With `--probabilities`, a safetensors file
holding `probabilities` [4,K] (what `AJUSTE_TFLITE_DIR=dir cargo test --release --test tflite` writes next to
each model, from the Rust model), the float model's must match within `--tol`; a 1000-class model (the shipped
weights) is compared with the PyTorch goldens' softmax instead. With `--data DIR` (class folders and a
`*_split.json` listing `--split`'s files, as bench/data/letters26 has), the float and int8 models' accuracy on
that split, prepared as the page prepares an image; the int8 model's must be within 1 point of the float
model's. MediaPipe's ImageClassifier then classifies a few of those images with each model: the same class and
label as the interpreter (and no class where the top probability is below the "none of these" threshold the
metadata carries, if any).
"""
import argparse, glob, io, json, os, sys, zipfile

import numpy as np
from PIL import Image, ImageOps

try:
    from ai_edge_litert.interpreter import Interpreter
    RUNTIME = "ai-edge-litert"
except ImportError:  # the older package
    from tflite_runtime.interpreter import Interpreter
    RUNTIME = "tflite-runtime"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests/fixtures/golden_shipped.safetensors")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from safetensors_np import read_safetensors  # noqa: E402


def prepare(path):
    """The page's preparation (src/export/snippet.rs): upright, alpha over white, centre square, bicubic 224."""
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGBA")
    img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
    side = min(img.size); left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


class Model:
    def __init__(self, path):
        self.path = path
        self.it = Interpreter(model_path=path)
        self.it.allocate_tensors()
        (inp,), (out,) = self.it.get_input_details(), self.it.get_output_details()
        self.inp, self.out = inp, out
        assert list(inp["shape"]) == [1, 224, 224, 3], f"input shape {inp['shape']}"
        assert len(out["shape"]) == 2 and out["shape"][0] == 1, f"output shape {out['shape']}"
        self.quantized = inp["dtype"] == np.uint8
        if self.quantized:
            assert inp["quantization"] == (1 / 128, 127), f"uint8 input {inp['quantization']}: (u8 - 127) / 128"
            assert out["dtype"] == np.uint8 and out["quantization"] == (1 / 256, 0), f"output {out}"
        else:
            assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
        self.labels = zipfile.ZipFile(path).read("labels.txt").decode().splitlines()
        assert len(self.labels) == out["shape"][1], f"{len(self.labels)} labels for {out['shape'][1]} outputs"

    def __call__(self, pixels):
        """Probabilities of one prepared image (224×224×3 uint8)."""
        x = pixels[None] if self.quantized else ((pixels[None].astype(np.float32) - 127) / 128)
        self.it.set_tensor(self.inp["index"], x)
        self.it.invoke()
        p = self.it.get_tensor(self.out["index"])[0]
        return p.astype(np.float64) / 256 if self.quantized else p


def check_metadata(path, quantized):
    """The metadata MediaPipe reads, through the TFLite and metadata schemas' own Python readers (shipped with
    ai-edge-litert and mediapipe): NormalizationOptions (float input), the labels file (TENSOR_AXIS_LABELS)."""
    try:
        from ai_edge_litert import schema_py_generated as tfl
        from mediapipe.tasks.metadata import metadata_schema_py_generated as schema
    except ImportError:
        print("  (ai-edge-litert's schema or mediapipe missing: metadata not read)")
        return None
    raw = bytearray(open(path, "rb").read())
    model = tfl.Model.GetRootAsModel(raw, 0)
    (entry,) = [model.Metadata(i) for i in range(model.MetadataLength())
                if model.Metadata(i).Name() == b"TFLITE_METADATA"]
    buf = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0), "metadata identifier M001"
    meta = schema.ModelMetadata.GetRootAsModelMetadata(buf, 0)
    sg = meta.SubgraphMetadata(0)
    inp, out = sg.InputTensorMetadata(0), sg.OutputTensorMetadata(0)
    assert inp.Content().ContentPropertiesType() == schema.ContentProperties.ImageProperties
    if not quantized:
        unit = inp.ProcessUnits(0)
        assert unit.OptionsType() == schema.ProcessUnitOptions.NormalizationOptions
        norm = schema.NormalizationOptions()
        norm.Init(unit.Options().Bytes, unit.Options().Pos)
        assert (norm.MeanAsNumpy().tolist(), norm.StdAsNumpy().tolist()) == ([127.0], [128.0])
    f = out.AssociatedFiles(0)
    assert f.Name() == b"labels.txt" and f.Type() == schema.AssociatedFileType.TENSOR_AXIS_LABELS
    threshold = None
    for i in range(out.ProcessUnitsLength()):
        unit = out.ProcessUnits(i)
        if unit.OptionsType() == schema.ProcessUnitOptions.ScoreThresholdingOptions:
            options = schema.ScoreThresholdingOptions()
            options.Init(unit.Options().Bytes, unit.Options().Pos)
            threshold = options.GlobalScoreThreshold()
    print(f"  metadata: {meta.Name().decode()!r}, labels file {f.Name().decode()} (TENSOR_AXIS_LABELS)"
          + ("" if quantized else ", NormalizationOptions mean 127 std 128")
          + ("" if threshold is None else f", none-of-these threshold {threshold:.4f} (ScoreThresholdingOptions)"))
    return threshold


def goldens(model, expected, tol):
    g = read_safetensors(GOLDEN)[0]
    probs = np.stack([model(x) for x in g["input_u8_hwc"]])
    if expected is None and probs.shape[1] == 1000:
        logits = g["logits"].astype(np.float64)
        e = np.exp(logits - logits.max(1, keepdims=True)); expected = e / e.sum(1, keepdims=True)
    diff = None
    if expected is not None:
        diff = float(np.abs(probs - expected).max())
        print(f"  golden inputs: max |probability difference| {diff:.2e}")
        if tol is not None:
            assert diff < tol, f"probabilities differ by {diff} (tolerance {tol})"
    for i, p in enumerate(probs):
        print(f"  golden input {i}: {model.labels[int(p.argmax())]} ({p.max():.3f})")
    return diff


def split_files(data, split):
    (path,) = glob.glob(os.path.join(data, "*_split.json"))
    return [os.path.join(data, f) for f in json.load(open(path))[split]]


def accuracy(model, files):
    index = {l: i for i, l in enumerate(model.labels)}
    preds = [int(model(prepare(f)).argmax()) for f in files]
    truth = [index[os.path.basename(os.path.dirname(f))] for f in files]
    return float(np.mean(np.array(preds) == np.array(truth))), preds


def mediapipe_check(path, model, files, threshold):
    """MediaPipe's ImageClassifier on the prepared images: the same class, named from the model's labels; with a
    "none of these" threshold in the metadata, no class exactly when the top probability is below it."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        print("  (mediapipe not installed: ImageClassifier not checked)")
        return
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path), max_results=1)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        agree, worst, none = 0, 0.0, 0
        for f in files:
            pixels = prepare(f)
            mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(pixels))
            categories = classifier.classify(mp_image).classifications[0].categories
            p = model(pixels)
            if threshold is not None and float(p.max()) < threshold:
                agree += not categories  # "none of these"
                none += 1
                continue
            top = categories[0]
            agree += top.category_name == model.labels[int(p.argmax())] and top.index == int(p.argmax())
            worst = max(worst, abs(top.score - float(p.max())))
    print(f"  MediaPipe {mp.__version__} ImageClassifier: as the interpreter on {agree}/{len(files)} images "
          f"({none} below the none-of-these threshold: no class), top score within {worst:.1e}")
    assert agree == len(files), "MediaPipe disagrees with the interpreter"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--probabilities", help="safetensors with the expected `probabilities` [4,K] of the goldens")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--int8", help="model_int8.tflite")
    ap.add_argument("--data", help="a folder of class folders with a *_split.json")
    ap.add_argument("--split", default="test")
    ap.add_argument("--mediapipe-images", type=int, default=52, help="images MediaPipe classifies (0: none)")
    a = ap.parse_args()

    expected = read_safetensors(a.probabilities)[0]["probabilities"] if a.probabilities else None
    models = [("float", a.model)] + ([("int8", a.int8)] if a.int8 else [])
    loaded, thresholds = {}, {}
    for kind, path in models:
        m = loaded[kind] = Model(path)
        print(f"{path} ({kind}, {os.path.getsize(path):,} bytes): {len(m.labels)} classes, "
              f"input {m.inp['dtype'].__name__}, runs in {RUNTIME}")
        thresholds[kind] = check_metadata(path, m.quantized)
        goldens(m, expected, a.tol if kind == "float" else None)
    if a.data:
        files = split_files(a.data, a.split)
        acc = {}
        for kind, m in loaded.items():
            acc[kind], _ = accuracy(m, files)
            print(f"{kind}: accuracy on {a.split} ({len(files)} images) {acc[kind]:.4f}")
        if "int8" in acc:
            gap = acc["float"] - acc["int8"]
            print(f"int8 vs float: {-gap * 100:+.2f} points")
            assert abs(gap) <= 0.01, f"int8 is {gap * 100:.2f} points from float (more than 1)"
        if a.mediapipe_images:
            step = max(1, len(files) // a.mediapipe_images)
            some = files[::step][:a.mediapipe_images]
            for kind, m in loaded.items():
                print(f"{kind}:")
                mediapipe_check(m.path, m, some, thresholds[kind])
    print("OK")


if __name__ == "__main__":
    sys.exit(main())
