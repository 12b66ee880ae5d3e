#!/usr/bin/env python3
"""Checks that an exported model.safetensors works in PyTorch as the README says (run where torch and timm
are installed, e.g. the GPU machine):  python3 scripts/check_pytorch.py model.safetensors IMAGE

1. loads strictly into the reference module (scripts/effl0.py, beside this file) and classifies IMAGE with the
   README's code;
2. renames the keys with the README's timm mapping, loads strictly into timm's tf_efficientnet_lite0 and checks
   that both give the same logits.
"""
import json, os, sys
import numpy as np, torch, timm
from PIL import Image, ImageOps
from safetensors import safe_open
from safetensors.torch import load_file

path, image = sys.argv[1:3]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from effl0 import EfficientNetLite0  # noqa: E402

# --- the README's snippet ---
state = load_file(path)
with safe_open(path, "pt") as f:
    labels = json.loads(f.metadata()["labels"])
model = EfficientNetLite0(num_classes=len(labels)).eval()
model.load_state_dict(state)
img = ImageOps.exif_transpose(Image.open(image)).convert("RGBA")   # upright, as browsers show it
img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")   # alpha over white
side = min(img.size); left, top = (img.width - side) // 2, (img.height - side) // 2
img = img.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)
x = (torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) - 127) / 128
embedding, logits = model(x[None])
print("reference module:", labels[logits.argmax().item()], torch.softmax(logits, -1).tolist())

# --- the README's timm key mapping ---
STAGES = [1, 2, 2, 3, 3, 4, 1]
where = [(s, j) for s, n in enumerate(STAGES) for j in range(n)]
def to_timm(key):
    p = key.split(".")
    if p[0] == "stem":
        return ("conv_stem." if p[1] == "conv" else "bn1.") + p[2]
    if p[0] == "head":
        return ("conv_head." if p[1] == "conv" else "bn2.") + p[2]
    if p[0] == "classifier":
        return key
    i = int(p[1]); s, j = where[i]
    names = ({"dw.conv": "conv_dw", "dw.bn": "bn1", "project.conv": "conv_pw", "project.bn": "bn2"} if i == 0 else
             {"expand.conv": "conv_pw", "expand.bn": "bn1", "dw.conv": "conv_dw", "dw.bn": "bn2",
              "project.conv": "conv_pwl", "project.bn": "bn3"})
    return f"blocks.{s}.{j}.{names[p[2] + '.' + p[3]]}.{p[4]}"

net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=len(labels)).eval()
missing, unexpected = net.load_state_dict({to_timm(k): v for k, v in state.items()}, strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
with torch.no_grad():
    timm_logits = net(x[None])
diff = (timm_logits - logits).abs().max().item()
print(f"timm tf_efficientnet_lite0: {labels[timm_logits.argmax().item()]}, max |logits diff| vs reference {diff:.2e}")
assert diff < 1e-3, diff
print("OK")
