"""The data side of Ajuste's training, ported from its Rust core so that this recipe draws what the page draws:
the seeded generator (`src/rng.rs`), the stratified split (`src/data/split.rs`), the page's preprocessing
(`src/preprocess.rs`, which follows Pillow exactly) and the augmentation with its bank of views
(`src/train/augment.rs`, `src/finetune/trainer/bank.rs`)."""
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
SIZE = 224
# What the page reads (src/data/paths.rs); anything else in a class folder is skipped, as the page skips it.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}


class Rng:
    """SplitMix64 as `src/rng.rs`: the same seed gives the same split, shuffles, initial weights and views."""

    def __init__(self, seed=0):
        self.state = (seed ^ 0x5851F42D4C957F2D) & MASK

    def next_u64(self):
        self.state = (self.state + GOLDEN) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def next_f32(self):
        return np.float32((self.next_u64() >> 40) / float(1 << 24))

    def below(self, n):
        return ((self.next_u64() >> 32) * n) >> 32

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def floats(self, n):
        """The next `n` `next_f32` draws at once (SplitMix64's state is a counter, so they vectorise)."""
        k = np.arange(1, n + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            z = np.uint64(self.state) + k * np.uint64(GOLDEN)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        self.state = (self.state + n * GOLDEN) & MASK
        return (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)


def dense_init(d_in, d_out, rng):
    """PyTorch's nn.Linear init drawn as `Dense::init` draws it: weight [out, in] then bias, U(-1/sqrt(in), ...)."""
    bound = np.float32(1.0) / np.sqrt(np.float32(d_in))
    w = (rng.floats(d_in * d_out) * np.float32(2) - np.float32(1)) * bound
    b = (rng.floats(d_out) * np.float32(2) - np.float32(1)) * bound
    return w.reshape(d_out, d_in), b


def lora_a_init(c_in, rank, rng):
    """LoRA's A [rank, c_in] as `Lora::new` draws it: Box-Muller normals times 1/sqrt(c_in)."""
    f = rng.floats(2 * rank * c_in).astype(np.float64)
    u1, u2 = np.maximum(f[0::2], 1e-12), f[1::2]
    normal = (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)
    return (normal * (np.float32(1.0) / np.sqrt(np.float32(c_in)))).reshape(rank, c_in)


def stratified_split(labels, fraction, seed):
    """Per class, shuffled (seeded), round(n x fraction) held out: at least one of two or more, never the last."""
    rng, train, val = Rng(seed), [], []
    share = float(np.float32(min(max(fraction, 0.0), 1.0)))
    for c in range(max(labels) + 1 if labels else 0):
        members = [i for i, label in enumerate(labels) if label == c]
        rng.shuffle(members)
        n = len(members)
        # Rust rounds the f32 product half away from zero.
        n_val = int(math.floor(float(np.float32(n) * np.float32(share)) + 0.5))
        if fraction > 0 and n >= 2:
            n_val = min(max(n_val, 1), n - 1)
        elif n < 2:
            n_val = 0
        val += members[:n_val]
        train += members[n_val:]
    return sorted(train), sorted(val)


def load_image(path):
    """The page's preprocessing (docs/model.md): upright, alpha over white, centre square crop, bicubic 224."""
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGBA")
    img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((SIZE, SIZE), Image.BICUBIC)
    return np.array(img, dtype=np.uint8)


class Folder:
    """Images in class folders. Classes in the order of `classes.json` beside the folder when there is one (what
    `ajuste export-recipe` writes: the project's order, which labels and the split depend on), else sorted by
    name as the page sorts a dropped folder. Images sorted by file name in each class; hidden files skipped."""

    def __init__(self, root):
        root = Path(root)
        listing = root.parent / "classes.json"
        if listing.exists():
            entries = json.loads(listing.read_text(encoding="utf-8"))
        else:
            entries = [{"name": d.name, "folder": d.name} for d in sorted(root.iterdir()) if d.is_dir()]
        self.names, self.paths, self.labels = [], [], []
        for entry in entries:
            folder = root / entry["folder"]
            files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith(".") for part in p.relative_to(folder).parts))
            if not files:
                continue
            self.names.append(entry["name"])
            self.labels += [len(self.names) - 1] * len(files)
            self.paths += files


def _round(x):
    """Rust's f32 `round` (half away from zero) for x >= 0, exactly."""
    fl = np.floor(x)
    return np.where(x - fl >= np.float32(0.5), fl + np.float32(1), fl)


def view_rng(seed, image, view):
    """The generator of one augmented view (and with view 0 of an image's offset in the bank's cycle)."""
    mix = Rng((seed ^ (image * GOLDEN)) & MASK)
    return Rng((mix.next_u64() ^ (view * 0xC2B2AE3D27D4EB4F)) & MASK)


def augment(pixels, opts, rng):
    """One augmented copy of 224x224x3 u8 `pixels`, as `src/train/augment.rs` draws and maps it: a random
    resized crop and a rotation in one bilinear inverse map (edges replicated), an optional mirror, then
    brightness and contrast through a 256-entry table. In f32 as the Rust code; a pixel may differ by one
    where a libm function rounds differently."""
    f32 = np.float32
    uniform = lambda lo, hi: f32(lo) + (f32(hi) - f32(lo)) * rng.next_f32()  # noqa: E731
    side = f32(SIZE)
    w = h = side
    x0 = y0 = f32(0)
    la0, la1 = np.log(f32(opts["crop_aspect"][0])), np.log(f32(opts["crop_aspect"][1]))
    for _ in range(10):
        target = side * side * uniform(*opts["crop_scale"])
        aspect = np.exp(uniform(la0, la1))
        cw, ch = np.sqrt(target * aspect), np.sqrt(target / aspect)
        if cw <= side and ch <= side:
            w, h, x0, y0 = cw, ch, uniform(0, side - cw), uniform(0, side - ch)
            break
    rot = f32(opts["rotation_degrees"])
    angle = uniform(-rot, rot) * (f32(np.pi) / f32(180))  # f32::to_radians
    flip = opts["horizontal_flip"] and rng.next_f32() < f32(0.5)
    brightness = uniform(1 - f32(opts["brightness"]), 1 + f32(opts["brightness"]))
    contrast = uniform(1 - f32(opts["contrast"]), 1 + f32(opts["contrast"]))

    sin, cos = np.sin(angle), np.cos(angle)
    kx, ky = (-w / side if flip else w / side), h / side
    m00, m01, m10, m11 = cos * kx, -sin * ky, sin * kx, cos * ky
    cx, cy = x0 + w / f32(2) - f32(0.5), y0 + h / f32(2) - f32(0.5)
    half, top = side / f32(2) - f32(0.5), side - f32(1)
    grid = np.arange(SIZE, dtype=f32) - half
    v, u = grid[:, None], grid[None, :]
    sx = np.clip((cx + m01 * v) + m00 * u, f32(0), top)
    sy = np.clip((cy + m11 * v) + m10 * u, f32(0), top)
    ix, iy = sx.astype(np.int64), sy.astype(np.int64)
    fx, fy = (sx - ix.astype(f32))[..., None], (sy - iy.astype(f32))[..., None]
    ix1, iy1 = np.minimum(ix + 1, SIZE - 1), np.minimum(iy + 1, SIZE - 1)
    p = pixels.astype(f32)
    p00, p01, p10, p11 = p[iy, ix], p[iy, ix1], p[iy1, ix], p[iy1, ix1]
    upper = p00 + fx * (p01 - p00)
    lower = p10 + fx * (p11 - p10)
    out = np.clip(_round(upper + fy * (lower - upper)), 0, 255).astype(np.uint8)
    if brightness != 1 or contrast != 1:
        luma = int((out.astype(np.uint64) * np.array([299, 587, 114], dtype=np.uint64)).sum())
        mean = f32(luma) / (f32(1000) * f32(SIZE * SIZE))
        gain, offset = contrast * brightness, (f32(1) - contrast) * brightness * mean
        table = np.clip(_round(gain * np.arange(256, dtype=f32) + offset), 0, 255).astype(np.uint8)
        out = table[out]
    return out


def cut_bytes(cut):
    """Bytes of one image's activations where the network is cut before block `cut` (`cut_bytes_per_image`)."""
    cin = [32, 16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192][cut]
    size = [112, 112, 56, 56, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7, 7, 7][cut]
    return 4 * cin * size * size


def bank_views(opts, cut, train, val):
    """Views per training image the Rust trainer keeps in its activation bank (`bank_views`): the asked number,
    fewer when its cache budget holds fewer, at least one; none without augmentation. The recipe recomputes
    views instead of caching them but cycles the same ones, so it trains on the same images."""
    aug = opts["augment"]
    if not aug["enabled"]:
        return 0
    capacity = opts["cache_bytes"] // cut_bytes(cut)
    return min(aug["views"], max(1, max(capacity - val, 0) // max(train, 1)))


def view_of(seed, image, epoch, views, augmenting):
    """Which view of `image` round `epoch` trains on (`DeepTrainer::view`): 0 is the image itself."""
    if not augmenting:
        return 0
    if views == 0:
        return 1 + epoch
    return 1 + (epoch + view_rng(seed, image, 0).below(views)) % views


class Views:
    """A map-style dataset of (image index, view) keys → (u8 HWC pixels, label): view 0 is the prepared image,
    view v > 0 its augmentation drawn from `view_rng(seed, image, v)`, so any worker on any rank makes the
    same view."""

    def __init__(self, folder, opts):
        self.folder, self.opts = folder, opts

    def __len__(self):
        return len(self.folder.paths)

    def __getitem__(self, key):
        image, view = key
        pixels = load_image(self.folder.paths[image])
        if view > 0:
            pixels = augment(pixels, self.opts["augment"], view_rng(self.opts["seed"], image, view))
        return pixels, self.folder.labels[image]
