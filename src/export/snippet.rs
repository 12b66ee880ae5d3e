//! The Python that prepares an image as the page does (`preprocess::prepare_rgb`), written once: the Export
//! panel's snippets and the model card are built from these lines, README.md and docs/model.md quote them, and
//! tests/snippet.rs runs them against the page's preprocessing (and checks the quotes).

/// The preparation lines, a literal so that `concat!` can build the snippets around them. The EXIF orientation
/// first (a phone photo saved sideways is otherwise read sideways), then alpha over white: `convert("RGB")`
/// alone would drop the alpha, leaving whatever colour the transparent pixels hold.
macro_rules! prepare {
    () => {
        r#"img = ImageOps.exif_transpose(Image.open("photo.jpg")).convert("RGBA")   # upright, as browsers show it
img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")   # alpha over white
side = min(img.size); left, top = (img.width - side) // 2, (img.height - side) // 2
img = img.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)"#
    };
}

macro_rules! pil_import {
    () => {
        "from PIL import Image, ImageOps"
    };
}

/// The import the preparation lines need.
pub const PIL_IMPORT: &str = pil_import!();

/// `photo.jpg` → `img`, the 224×224 RGB image the model takes (before `(u8 - 127) / 128`).
pub const PREPARE: &str = prepare!();

/// `model.safetensors` in PyTorch, with the reference module `scripts/effl0.py`.
pub const PYTORCH: &str = concat!(
    "import numpy as np, torch\n",
    pil_import!(),
    r#"
from safetensors.torch import load_file
from effl0 import EfficientNetLite0   # scripts/effl0.py in the Ajuste repository

labels = [l.split(" ", 1)[1] for l in open("labels.txt").read().splitlines()]
model = EfficientNetLite0(num_classes=len(labels)).eval()
model.load_state_dict(load_file("model.safetensors"))
"#,
    prepare!(),
    r#"
x = (torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) - 127) / 128
embedding, logits = model(x[None])
print(labels[logits.argmax().item()])"#
);

/// `model.onnx` in ONNX Runtime (the Export panel and the model card).
pub const ONNX_PYTHON: &str = concat!(
    "import numpy as np, onnxruntime as ort\n",
    pil_import!(),
    "\n\n",
    prepare!(),
    r#"
x = ((np.asarray(img, dtype=np.float32) - 127) / 128).transpose(2, 0, 1)[None]
logits, embedding = ort.InferenceSession("model.onnx").run(["logits", "embedding"], {"input": x})
labels = [l.split(" ", 1)[1] for l in open("labels.txt").read().splitlines()]
print(labels[int(logits.argmax())])"#
);

/// `model.tflite` or `model_int8.tflite` in LiteRT's Python interpreter (`pip install ai-edge-litert`), the
/// labels read from the model (the Export panel); `scripts/check_tflite.py` prepares images with these lines too.
pub const TFLITE_PYTHON: &str = concat!(
    "import zipfile\nimport numpy as np\nfrom ai_edge_litert.interpreter import Interpreter\n",
    pil_import!(),
    "\n\nMODEL = \"model.tflite\"   # or model_int8.tflite\n",
    prepare!(),
    r#"
interpreter = Interpreter(model_path=MODEL)
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
x = np.asarray(img, dtype=np.uint8)[None]   # [1, 224, 224, 3]: the int8 model takes the pixels as they are
if inp["dtype"] == np.float32:
    x = (x.astype(np.float32) - 127) / 128   # the float model: (u8 - 127) / 128
interpreter.set_tensor(inp["index"], x)
interpreter.invoke()
p = interpreter.get_tensor(out["index"])[0]
if out["dtype"] == np.uint8:
    p = p / 256   # the int8 model's probabilities: q / 256
labels = zipfile.ZipFile(MODEL).read("labels.txt").decode().splitlines()   # packed in the model
print(labels[int(p.argmax())], float(p.max()))"#
);
