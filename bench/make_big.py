#!/usr/bin/python3
"""Makes a big image folder for `ajuste train` (issue 27, data that does not fit in memory): N images (default
100,000) in class folders, each an augmented copy of a bench/data/letters26 image (random crop, rotation, colour
jitter), as a 128x128 JPEG (about 4 KB: a photo folder's shape, though smaller files). Deterministic: the same N
and seed give the same files, whatever the number of processes (`--jobs`). The directory must not exist yet or be empty (it is big: keep it out of the repo).

    /usr/bin/python3 bench/make_big.py DIR [--count N] [--seed S] [--jobs J]
"""

import argparse
import multiprocessing
import os
import random
import sys

from PIL import Image, ImageEnhance

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "letters26")
SIZE = 128


def sources():
    """The letters26 images by class, in a fixed order."""
    classes = sorted(d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d)))
    return {c: sorted(os.path.join(ROOT, c, f) for f in os.listdir(os.path.join(ROOT, c))) for c in classes}


def augment(image, rng):
    """A random crop (70-100 % of the side), a rotation within ±15°, and brightness, contrast and colour jitter."""
    w, h = image.size
    side = int(min(w, h) * rng.uniform(0.7, 1.0))
    x, y = rng.randint(0, w - side), rng.randint(0, h - side)
    out = image.crop((x, y, x + side, y + side)).resize((SIZE, SIZE), Image.BICUBIC)
    fill = tuple(rng.randint(200, 255) for _ in range(3))
    out = out.rotate(rng.uniform(-15, 15), resample=Image.BICUBIC, fillcolor=fill)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        out = enhance(out).enhance(rng.uniform(0.7, 1.3))
    return out


def write(args):
    """Images start, start + step, … below count (one process's share), each drawn from its own generator."""
    root, count, seed, start, step = args
    by_class = sources()
    classes = list(by_class)
    opened = {}
    written = 0
    for i in range(start, count, step):
        # Round-robin over the classes: every class gets N/26 images (±1). One generator per image, so the files
        # do not depend on how many processes write them.
        rng = random.Random(seed * 1_000_003 + i)
        label = classes[i % len(classes)]
        path = rng.choice(by_class[label])
        if path not in opened:
            opened[path] = Image.open(path).convert("RGB")
        target = os.path.join(root, label, f"{i:06d}.jpg")
        augment(opened[path], rng).save(target, "JPEG", quality=85)
        written += os.path.getsize(target)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="processes writing (default: every core)")
    args = parser.parse_args()
    if os.path.exists(args.dir) and os.listdir(args.dir):
        sys.exit(f"{args.dir} is not empty")
    classes = list(sources())
    for label in classes:
        os.makedirs(os.path.join(args.dir, label), exist_ok=True)
    jobs = max(1, args.jobs)
    shares = [(args.dir, args.count, args.seed, j, jobs) for j in range(jobs)]
    with multiprocessing.Pool(jobs) as pool:
        written = sum(pool.map(write, shares))
    print(f"{args.count} images in {len(classes)} classes, {written >> 20} MB, in {args.dir}")


if __name__ == "__main__":
    main()
