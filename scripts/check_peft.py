#!/usr/bin/env python3
"""Checks a LoRA export in PyTorch: the merged model and the PEFT adapter give the same logits in timm.

    python3 scripts/check_peft.py EXPORT_DIR [BASE_WEIGHTS] [IMAGE]

EXPORT_DIR  an Ajuste export folder: model.safetensors (merged), adapter_config.json and the adapter weights as
            adapter_model.safetensors (PEFT's name) or adapter.safetensors (the download's name). Make one with
            `cargo run --release --example make_lora_export -- EXPORT_DIR`.
BASE_WEIGHTS  the unmerged pretrained backbone with Ajuste's clean names (default: this repo's
            public/models/efficientnet_lite0.safetensors; a head-only export's model.safetensors works too).
IMAGE       optional; preprocessed as the README says. Without it, a seeded random input in [-1, 1].

1. loads model.safetensors into timm's tf_efficientnet_lite0 (README key mapping, strict but for BN counters);
2. builds a second tf_efficientnet_lite0 with the base weights and a *random* classifier, then
   PeftModel.from_pretrained(base, adapter folder): the LoRA adapters and, through modules_to_save, the new head;
3. checks every adapter tensor was loaded (PEFT's own state dict of the adapter equals the file), that the adapter
   changes the base model's logits, and that both models give the same logits (max |diff| printed, < 1e-3);
4. merges the adapter with PEFT (merge_and_unload) and compares its conv weights with the merged export's.

Needs (pip): torch timm peft safetensors numpy pillow. Runs on the CPU, offline.
"""
import json, os, shutil, sys, tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never wait on the hub

import numpy as np, torch, timm  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from peft import PeftModel, get_peft_model_state_dict  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
export = Path(sys.argv[1])
base_path = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "public/models/efficientnet_lite0.safetensors"
image = sys.argv[3] if len(sys.argv) > 3 else None

# --- the README's timm key mapping (as in check_pytorch.py) ---
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

def timm_state(path, skip_classifier=False):
    return {to_timm(k): v.float() for k, v in load_file(str(path)).items()
            if not (skip_classifier and k.startswith("classifier."))}

with safe_open(str(export / "model.safetensors"), "pt") as f:
    labels = json.loads(f.metadata()["labels"])
K = len(labels)

# --- input ---
if image:
    img = ImageOps.exif_transpose(Image.open(image)).convert("RGBA")   # upright, as browsers show it
    img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")   # alpha over white
    side = min(img.size); left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)
    x = ((torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) - 127) / 128)[None]
else:
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1

# --- 1. merged export in timm ---
merged = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=K).eval()
missing, unexpected = merged.load_state_dict(timm_state(export / "model.safetensors"), strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)

# --- 2. base weights + a random classifier, then the PEFT adapter ---
torch.manual_seed(0)
base = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=K).eval()
missing, unexpected = base.load_state_dict(timm_state(base_path, skip_classifier=True), strict=False)
assert not unexpected, unexpected
assert all(k.endswith("num_batches_tracked") or k.startswith("classifier.") for k in missing), missing
with torch.no_grad():
    merged_logits = merged(x)
    base_logits = base(x)  # before PEFT modifies `base` in place

adapter_dir = export
tmp = None
if not (export / "adapter_model.safetensors").exists():
    # The download is named adapter.safetensors; PEFT reads adapter_model.safetensors.
    tmp = tempfile.mkdtemp()
    shutil.copy(export / "adapter.safetensors", Path(tmp) / "adapter_model.safetensors")
    shutil.copy(export / "adapter_config.json", Path(tmp) / "adapter_config.json")
    adapter_dir = Path(tmp)
config = json.loads((adapter_dir / "adapter_config.json").read_text())
print(f"adapter: LoRA r={config['r']} alpha={config['lora_alpha']} on {len(config['target_modules'])} convs, "
      f"modules_to_save={config['modules_to_save']}")
model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()

# --- 3. everything in the file was loaded, and the logits match ---
saved = load_file(str(adapter_dir / "adapter_model.safetensors"))
loaded = get_peft_model_state_dict(model, save_embedding_layers=False)
assert set(saved) == set(loaded), (sorted(set(saved) - set(loaded)), sorted(set(loaded) - set(saved)))
worst = max((saved[k].float() - loaded[k].float().cpu()).abs().max().item() for k in saved)
assert worst == 0.0, f"adapter tensors changed on load by {worst}"
print(f"PEFT loaded all {len(saved)} adapter tensors exactly")

with torch.no_grad():
    peft_logits = model(x)
moved = (peft_logits - base_logits).abs().max().item()
diff = (peft_logits - merged_logits).abs().max().item()
scale = merged_logits.abs().max().item()
print(f"merged model: {labels[merged_logits.argmax().item()]}, logits max |.| {scale:.3f}")
print(f"PEFT adapter on base: {labels[peft_logits.argmax().item()]}, "
      f"max |logits diff| vs merged {diff:.2e} (the adapter moved the base logits by {moved:.3f})")
assert moved > 1e-2, f"the adapter barely changes the base model ({moved}): the check would prove nothing"
assert diff < 1e-3, diff

# --- 4. PEFT's own merge against ours ---
peft_merged = model.merge_and_unload().state_dict()
ours = merged.state_dict()
targets = [f"{m}.weight" for m in config["target_modules"]]
wdiff = max((peft_merged[k] - ours[k]).abs().max().item() for k in targets)
print(f"PEFT merge_and_unload vs our merged conv weights: max |diff| {wdiff:.2e}")
assert wdiff < 1e-4, wdiff
if tmp:
    shutil.rmtree(tmp)
print("OK")
