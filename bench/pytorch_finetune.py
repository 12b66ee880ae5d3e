#!/usr/bin/env python3
"""PyTorch eager reference for fine-tuning throughput (issue 8's speed table), on whatever device torch sees.

Images/s of one training step (forward + backward + AdamW) at batch 32, 224x224, for the recipes Ajuste runs:
LoRA r16 on the 1x1 convs of the last 8 blocks + head conv, and the last 4 blocks + head conv unfrozen. BN is
frozen (eval mode); the frozen prefix runs under no_grad, as in our core, each step and (second column) once,
as our trainer's cached cut does without augmentation. Weights: the shipped fp16 file, as fp32.

    python3 bench/pytorch_finetune.py [--steps 30] [--classes 26]

Needs torch and safetensors; imports the reference module from scripts/effl0.py.
"""
import argparse, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from effl0 import EfficientNetLite0  # noqa: E402


class LoraConv(nn.Module):
    """y = conv(x) + (alpha/r) * B(A(x)) for a frozen 1x1 conv; A random (std 1/sqrt(c_in)), B zero."""

    def __init__(self, conv, r=16, alpha=16):
        super().__init__()
        self.conv = conv
        cin, cout = conv.in_channels, conv.out_channels
        self.a = nn.Parameter(torch.randn(r, cin) / cin**0.5)
        self.b = nn.Parameter(torch.zeros(cout, r))
        self.scale = alpha / r

    def forward(self, x):
        lora = F.conv2d(F.conv2d(x, self.a[:, :, None, None]), self.b[:, :, None, None])
        return self.conv(x) + self.scale * lora


def build(recipe, classes, device):
    model = EfficientNetLite0(num_classes=classes)
    state = {k: v.float() for k, v in load_file(os.path.join(ROOT, "public/models/efficientnet_lite0.safetensors")).items()}
    state = {k: v for k, v in state.items() if not k.startswith("classifier")}
    model.load_state_dict(state, strict=False)
    model.eval()  # BN frozen
    for p in model.parameters():
        p.requires_grad_(False)
    cut = 8 if recipe == "lora8" else 12
    trainable = list(model.classifier.parameters())
    for p in trainable:
        p.requires_grad_(True)
    groups = [{"params": trainable, "lr": 1e-3}]
    tail = list(model.blocks[cut:]) + [model.head]
    if recipe == "lora8":
        adapters = []
        for m in tail:
            for name in ("expand", "project"):
                cb = getattr(m, name, None)
                if cb is not None:
                    cb.conv = LoraConv(cb.conv)
                    adapters += [cb.conv.a, cb.conv.b]
            if m is model.head:
                m.conv = LoraConv(m.conv)
                adapters += [m.conv.a, m.conv.b]
        groups.append({"params": adapters, "lr": 1e-3})
    else:
        params = [p for m in tail for p in m.parameters() if p.dim() > 1]  # conv weights; BN stays frozen
        for p in params:
            p.requires_grad_(True)
        groups.append({"params": params, "lr": 1e-4})
    model.to(device)
    return model, cut, torch.optim.AdamW(groups, weight_decay=1e-4)


def prefix(model, cut, x):
    with torch.no_grad():
        h = model.stem(x)
        for b in model.blocks[:cut]:
            h = b(h)
    return h


def step(model, cut, opt, x, y, cached=None):
    h = prefix(model, cut, x) if cached is None else cached
    for b in model.blocks[cut:]:
        h = b(h)
    emb = model.head(h).mean(dim=(2, 3))
    loss = F.cross_entropy(model.classifier(emb), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=26)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"| recipe (PyTorch {torch.__version__} eager, {name}, batch {args.batch}) | images/s, prefix every step "
          "| images/s, cached cut |")
    print("|---|---:|---:|")
    for recipe, label in (("lora8", "LoRA r16, last 8 blocks + head conv"), ("last4", "last 4 blocks + head conv unfrozen")):
        torch.manual_seed(0)
        model, cut, opt = build(recipe, args.classes, device)
        x = torch.rand(args.batch, 3, 224, 224, device=device) * 2 - 1
        y = torch.randint(0, args.classes, (args.batch,), device=device)
        rates = []
        # Prefix every step (as our trainer does with augmentation), then the activations at the cut computed once
        # (our cached-cut path without augmentation).
        for cached in (None, prefix(model, cut, x)):
            for _ in range(5):
                step(model, cut, opt, x, y, cached)
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                loss = step(model, cut, opt, x, y, cached)
            loss.item()
            if device == "cuda":
                torch.cuda.synchronize()
            rates.append(args.steps * args.batch / (time.perf_counter() - t0))
        print(f"| {label} | {rates[0]:.0f} | {rates[1]:.0f} |")


if __name__ == "__main__":
    main()
