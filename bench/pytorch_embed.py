#!/usr/bin/env python3
"""PyTorch eager reference for embedding throughput (issue 12's real-GPU table), on whatever device torch sees.

Images/s of the backbone forward (224x224, fp32, eval mode, no_grad) at batch 1, 16 and 64, the embeddings read
back to the host as our benchmark does. Weights: the shipped fp16 file, as fp32; the module is scripts/effl0.py.

    python3 bench/pytorch_embed.py [--iters 20] [--batches 1,16,64]
"""
import argparse, os, sys, time

import torch
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from effl0 import EfficientNetLite0  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batches", default="1,16,64")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    model = EfficientNetLite0(num_classes=1000)
    state = {k: v.float() for k, v in load_file(os.path.join(ROOT, "public/models/efficientnet_lite0.safetensors")).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.eval().to(device)

    print(f"| backend (PyTorch {torch.__version__} eager, {name}) | batch | images/s |")
    print("|---|---:|---:|")
    with torch.no_grad():
        for batch in [int(b) for b in args.batches.split(",")]:
            x = torch.randn(batch, 3, 224, 224, device=device)
            for _ in range(3):  # warm-up: cuDNN algorithm choice, allocations
                model(x)[0].cpu()
            start = time.perf_counter()
            for _ in range(args.iters):
                model(x)[0].cpu()
            ips = batch * args.iters / (time.perf_counter() - start)
            print(f"| PyTorch eager fp32 | {batch} | {ips:.1f} |")


if __name__ == "__main__":
    main()
