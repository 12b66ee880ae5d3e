#!/usr/bin/env python3
"""Ajuste's training recipe in PyTorch, for one machine or many (see README.md beside this file):

    python3 train.py                                   # one process: the GPU if there is one, else the CPU
    torchrun --nnodes N --nproc_per_node M train.py    # PyTorch DDP over N x M processes

Trains what the page trains with the project's options (options.json): the head alone on the backbone's features,
LoRA adapters or the last blocks on augmented images, or Auto (the head, then LoRA on the last 8 blocks, the lower
best validation loss kept), and writes model.safetensors, labels.txt and metrics.json (and the PEFT adapter when
LoRA is kept) in the layout the page's *Open model* and `ajuste predict` read."""
import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

import ajuste_data as D
import ajuste_model as M

HERE = Path(__file__).resolve().parent
ROUND_IMAGES, VALIDATION_IMAGES, MIN_DELTA, EMBED_BATCH = 3200, 1000, 1e-3, 32
# The page's defaults (src/options.rs), for fields an options file leaves out.
DEFAULTS = {"val_fraction": 0.2, "epochs": 50, "batch_size": 32, "learning_rate": 1e-3, "label_smoothing": 0.0,
            "patience": 10, "seed": 0, "finetune": {"kind": "auto"}, "weight_decay": 1e-4,
            "decoupled_weight_decay": False, "hidden_units": 0, "dropout": 0.2, "backbone_learning_rate": None,
            "deep_weight_decay": 1e-2, "warmup_fraction": 0.05, "cache_bytes": 256 << 20, "budget_seconds": 600,
            "augment": {"enabled": True, "crop_scale": [0.7, 1.0], "crop_aspect": [0.75, 4 / 3],
                        "rotation_degrees": 10.0, "brightness": 0.2, "contrast": 0.2, "horizontal_flip": False,
                        "views": 8}}
AUTO_LORA = {"kind": "lora", "blocks": 8, "rank": 16, "alpha": 16.0}


class Ctx:
    """Who this process is: rank, world size and device; rank 0 alone prints and writes."""

    def __init__(self, device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and device != "cpu"
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            dist.init_process_group("nccl" if cuda else "gloo")

    def say(self, *args):
        if self.rank == 0:
            print(*args, flush=True)

    def sum(self, values, op=None):
        """`values` summed (or reduced by `op`) over every process."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
        return t.tolist()


def lr_factor(step, total, warmup_fraction):
    """Linear warm-up then cosine decay to 0 (`DeepOptions::lr_factor`)."""
    warmup = max(1, int(math.floor(float(np.float32(total) * np.float32(warmup_fraction)) + 0.5)))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min((step - warmup) / max(total - warmup, 1), 1.0)))


class Log:
    """History, best epoch (lowest validation loss) and early stopping, as `src/head/epoch_log.rs`."""

    def __init__(self, epochs, patience, unit="epoch"):
        self.epochs, self.patience, self.unit = epochs, patience, unit
        self.history, self.best, self.best_state, self.stop_reason, self.limit_reason = [], None, None, None, None

    def record(self, metrics, snapshot):
        if self.best is None or metrics["val_loss"] < self.best["val_loss"]:
            self.best, self.best_state = metrics, snapshot()
        self.history.append(metrics)
        epoch, counted = metrics["epoch"], None
        for m in self.history:
            if counted is None or m["val_loss"] < counted["val_loss"] - MIN_DELTA:
                counted = m
        if epoch + 1 >= self.epochs:
            self.stop_reason = self.limit_reason or f"completed {self.epochs} {self.unit}s"
        elif self.patience > 0 and epoch - counted["epoch"] >= self.patience:
            self.stop_reason = (f"stopped early after {epoch + 1} {self.unit}s: validation loss not {MIN_DELTA} "
                                f"lower for {self.patience} {self.unit}s")

    def line(self, run, m, seconds):
        best = " (best)" if m is self.best else ""
        return (f"{run} {self.unit} {m['epoch'] + 1}/{self.epochs}: train loss {m['train_loss']:.4f} acc "
                f"{100 * m['train_accuracy']:.1f}% | val loss {m['val_loss']:.4f} acc {100 * m['val_accuracy']:.1f}%"
                f" | {seconds:.1f} s{best}")


def to_input(pixels, device):
    """u8 NHWC → (x - 127) / 128 NCHW float32 on `device`."""
    return (pixels.to(device, non_blocking=True).permute(0, 3, 1, 2).float() - 127.0) / 128.0


def loader(dataset, batches, workers):
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                                       pin_memory=torch.cuda.is_available(), persistent_workers=False)


def shards(ids, size, ctx, view=lambda i: 0):
    """`ids` in global batches of `size`, this process's share of each (every `world`-th image): each process
    takes part in every batch, so DDP sums the gradient of exactly the batch one process would take. A share
    left empty holds the batch's first image with weight 0. Yields (keys, weights, batch size)."""
    for start in range(0, len(ids), size):
        batch = ids[start:start + size]
        mine = batch[ctx.rank::ctx.world]
        weights = [1.0] * len(mine) if mine else [0.0]
        yield [(i, view(i)) for i in (mine or batch[:1])], weights, len(batch)


def evaluate(model, ds, ids, ctx, args, k):
    """Plain cross-entropy, correct count and confusion matrix of `model` on `ids`, over every process."""
    plan = list(shards(ids, args.eval_batch, ctx))
    confusion = torch.zeros(k * k, dtype=torch.float64, device=ctx.device)
    loss = 0.0
    with torch.no_grad():
        for (pixels, y), (_, w, _) in zip(loader(ds, [p[0] for p in plan], args.workers), plan):
            logits = model(model.prefix(to_input(pixels, ctx.device)))
            y, w = y.to(ctx.device), torch.tensor(w, device=ctx.device, dtype=torch.float64)
            loss += float((F.cross_entropy(logits, y, reduction="none").double() * w).sum())
            confusion.index_add_(0, y * k + logits.argmax(1), w)
    if ctx.world > 1:
        dist.all_reduce(confusion)
    (loss,) = ctx.sum([loss])
    confusion = confusion.view(k, k).cpu()
    n = max(float(confusion.sum()), 1.0)
    return loss / n, float(confusion.diag().sum()) / n, confusion


def embed_all(net, ds, n, ctx, args):
    """The 1280 features of every image through the frozen backbone (rank 0 gets them all)."""
    model = M.Tail(net, 16).to(ctx.device)
    mine = list(range(ctx.rank, n, ctx.world))
    rows = []
    with torch.no_grad():
        for pixels, _ in loader(ds, [[(i, 0) for i in mine[s:s + EMBED_BATCH]] for s in range(0, len(mine),
                                                                                           EMBED_BATCH)], args.workers):
            rows.append(model.embed(model.prefix(to_input(pixels, ctx.device))))
    part = torch.cat(rows) if rows else torch.zeros(0, 1280, device=ctx.device)
    if ctx.world == 1:
        return part.cpu()
    size = -(-n // ctx.world)
    padded = torch.zeros(size, 1280, device=ctx.device)
    padded[:len(part)] = part
    parts = [torch.zeros_like(padded) for _ in range(ctx.world)]
    dist.all_gather(parts, padded)
    out = torch.zeros(n, 1280)
    for r, p in enumerate(parts):
        out[r::ctx.world] = p[:len(range(r, n, ctx.world))].cpu()
    return out


def head_run(feats, labels, train, val, opts, ctx):
    """The head alone on fixed features (`src/head/trainer.rs`): Adam (or AdamW), constant learning rate, the
    page's init, shuffles and dropout masks; metrics after every epoch on all training and validation images."""
    rng, k = D.Rng(opts["seed"]), max(labels) + 1
    hidden = opts["hidden_units"]
    layers = [D.dense_init(1280, hidden, rng), D.dense_init(hidden, k, rng)] if hidden else [D.dense_init(1280, k, rng)]
    params = [torch.tensor(a, device=ctx.device, requires_grad=True) for layer in layers for a in layer]
    adam = torch.optim.AdamW if opts["decoupled_weight_decay"] else torch.optim.Adam
    optim = adam(params, lr=opts["learning_rate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=opts["weight_decay"])
    x, y = feats.to(ctx.device), torch.tensor(labels, device=ctx.device)
    keep = np.float32(1) - np.float32(opts["dropout"])

    def forward(rows, masks=None):
        h = x[rows]
        if hidden:
            h = torch.relu(F.linear(h, params[0], params[1]))
            h = h * masks if masks is not None else h
        return F.linear(h, params[-2], params[-1])

    def metrics(ids):
        with torch.no_grad():
            logits = forward(ids)
            return float(F.cross_entropy(logits, y[ids])), float((logits.argmax(1) == y[ids]).float().mean())

    log, started = Log(opts["epochs"], opts["patience"]), time.time()
    while log.stop_reason is None:
        order = list(train)
        rng.shuffle(order)
        for s in range(0, len(order), opts["batch_size"]):
            rows = order[s:s + opts["batch_size"]]
            masks = None
            if hidden:
                draws = rng.floats(len(rows) * hidden).reshape(len(rows), hidden)
                masks = torch.tensor(np.where(draws < np.float32(opts["dropout"]), 0, 1 / keep).astype(np.float32),
                                     device=ctx.device)
            loss = F.cross_entropy(forward(rows, masks), y[rows], label_smoothing=opts["label_smoothing"])
            optim.zero_grad()
            loss.backward()
            optim.step()
        tl, ta = metrics(train)
        vl, va = metrics(val) if val else (tl, ta)
        m = {"epoch": len(log.history), "train_loss": tl, "train_accuracy": ta, "val_loss": vl, "val_accuracy": va}
        log.record(m, lambda: [p.detach().clone() for p in params])
        ctx.say(log.line("head", m, time.time() - started))
    ids = val or train
    with torch.no_grad():
        for p, best in zip(params, log.best_state):
            p.copy_(best)
        logits = forward(ids)
    confusion = torch.zeros(k * k, dtype=torch.float64)
    confusion.index_add_(0, (y[ids] * k + logits.argmax(1)).cpu(), torch.ones(len(ids), dtype=torch.float64))
    names = ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"] if hidden \
        else ["classifier.weight", "classifier.bias"]
    head = {n: p.detach().cpu().numpy() for n, p in zip(names, params)}
    return {"mode": "head", "log": log, "head": head, "trained": None, "confusion": confusion.view(k, k),
            "hidden": {"units": hidden, "dropout": opts["dropout"]} if hidden else None}


def deep_run(folder, train, val_all, opts, mode, shipped, ctx, args):
    """LoRA or the last blocks (`src/finetune/trainer.rs`): AdamW with the head's and the backbone's learning
    rates, warm-up then cosine decay per step, the bank's augmented views, validation after every round (an
    epoch; at most 3,200 training images on large sets, on a fixed 1,000 validation images), early stopping,
    the time budget, and the best round kept."""
    k, rng = max(folder.labels) + 1, D.Rng(opts["seed"])
    w, b = D.dense_init(1280, k, rng)
    net = M.folded_timm(shipped, k)
    with torch.no_grad():
        net.classifier.weight.copy_(torch.from_numpy(w))
        net.classifier.bias.copy_(torch.from_numpy(b))
    cut = 16 - mode["blocks"]
    if mode["kind"] == "lora":
        M.add_lora(net, mode["blocks"], mode["rank"], mode["alpha"], lambda c_in, r: D.lora_a_init(c_in, r, rng))
    else:
        M.unfreeze_last(net, mode["blocks"])
    model = M.Tail(net, cut).to(ctx.device)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if ctx.world > 1 else model
    head = [p for n, p in net.named_parameters() if p.requires_grad and n.startswith("classifier.")]
    backbone = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("classifier.")]
    backbone_lr = opts["backbone_learning_rate"] or (1e-3 if mode["kind"] == "lora" else 1e-4)
    optim = torch.optim.AdamW([{"params": head, "lr": opts["learning_rate"]}, {"params": backbone, "lr": backbone_lr}],
                              betas=(0.9, 0.999), eps=1e-5, weight_decay=opts["deep_weight_decay"])
    bases = [opts["learning_rate"], backbone_lr]
    n, bs = len(train), opts["batch_size"]
    val = val_all if len(val_all) <= VALIDATION_IMAGES else \
        [val_all[i * len(val_all) // VALIDATION_IMAGES] for i in range(VALIDATION_IMAGES)]
    rounds = max(1, -(-n // ROUND_IMAGES))
    share = -(-n // rounds)
    ranges = [(min(j * share, n), min((j + 1) * share, n)) for j in range(rounds)]
    per_round = [-(-(e - s) // bs) for s, e in ranges]
    steps_through = lambda r: r // rounds * sum(per_round) + sum(per_round[:r % rounds])  # noqa: E731
    log = Log(opts["epochs"] * rounds, opts["patience"], "round" if rounds > 1 else "epoch")
    total, step = steps_through(log.epochs), 0
    augmenting = opts["augment"]["enabled"]
    views = D.bank_views(opts, cut, n, len(val))
    ds = D.Views(folder, opts)
    budget = args.budget if args.budget is not None else opts["budget_seconds"]
    started, order = time.time(), []
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    while log.stop_reason is None:
        r = len(log.history)
        if r % rounds == 0:
            order = list(train)
            rng.shuffle(order)
        ids = order[ranges[r % rounds][0]:ranges[r % rounds][1]]
        plan = list(shards(ids, bs, ctx, lambda i: D.view_of(opts["seed"], i, r, views, augmenting)))
        # Summed on the device and read once a round: a read every step would wait for the GPU every step.
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)
        for (pixels, y), (_, wts, size) in zip(loader(ds, [p[0] for p in plan], args.workers), plan):
            factor = lr_factor(step, total, opts["warmup_fraction"])
            for group, base in zip(optim.param_groups, bases):
                group["lr"] = base * factor
            step += 1
            x, y = model.prefix(to_input(pixels, ctx.device)), y.to(ctx.device)
            wt = torch.tensor(wts, device=ctx.device)
            logits = ddp(x)
            ce = F.cross_entropy(logits, y, reduction="none", label_smoothing=opts["label_smoothing"])
            # DDP averages over processes: the batch's mean comes out of each process's sum x world / batch.
            loss = (ce * wt).sum() * ctx.world / size
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            with torch.no_grad():
                plain = F.cross_entropy(logits, y, reduction="none") if opts["label_smoothing"] else ce
                sums += torch.stack([(plain * wt).sum(), ((logits.argmax(1) == y).float() * wt).sum(), wt.sum()])
        tl, tc, tn = ctx.sum(sums.tolist())
        ta = tc / max(tn, 1)
        tl /= max(tn, 1)
        vl, va, _ = evaluate(model, ds, val, ctx, args, k) if val else (tl, ta, None)
        m = {"epoch": r, "train_loss": tl, "train_accuracy": ta, "val_loss": vl, "val_accuracy": va}
        log.record(m, lambda: {name: p.detach().cpu().clone() for name, p in trainable})
        (elapsed,) = ctx.sum([time.time() - started], dist.ReduceOp.MAX if ctx.world > 1 else None)
        ctx.say(log.line(mode["kind"], m, elapsed))
        if budget and log.stop_reason is None:
            # As `src/train/deep_job.rs` plans: stop when the next round would not fit (15 % margin); on a large
            # set, cut the rounds (and the schedule) to those that fit.
            fit = r + 1 + int(max((budget - elapsed) * 0.85, 0) / (elapsed / (r + 1)))
            if fit <= r + 1:
                log.stop_reason = f"stopped at the {budget} s time budget after {step} steps"
            elif rounds > 1 and fit < log.epochs:
                log.epochs = max(fit, r + 2)
                log.limit_reason = f"completed the {fit} rounds the {budget} s budget holds"
                total = max(steps_through(log.epochs), step)
    model.load_state_dict(log.best_state, strict=False)
    _, _, confusion = evaluate(model, ds, val_all or train, ctx, args, k)
    best = {name[len("net."):]: t for name, t in log.best_state.items()}
    head = {name: best[name].numpy() for name in ("classifier.weight", "classifier.bias")}
    return {"mode": mode["kind"], "log": log, "head": head, "trained": best, "confusion": confusion, "hidden": None,
            "steps": step, "deep": mode}


def choose(head, lora):
    """Auto's choice (`src/train/auto.rs`): the lower best validation loss, the head on a tie."""
    hl, ll = head["log"].best["val_loss"], lora["log"].best["val_loss"]
    if ll < hl:
        return lora, (f"LoRA on the last 8 blocks was kept: its best validation loss ({ll:.3f}) is lower than the "
                      f"head alone's ({hl:.3f}), so adapting the backbone helps on these images.")
    return head, (f"The head alone was kept: its best validation loss ({hl:.3f}) is no higher than LoRA on the last "
                  f"8 blocks ({ll:.3f}), so the pretrained features already suit these images.")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=HERE / "data", help="a folder of class folders")
    p.add_argument("--options", type=Path, default=HERE / "options.json", help="the project's training options")
    p.add_argument("--weights", type=Path, default=HERE / "efficientnet_lite0.safetensors")
    p.add_argument("--out", type=Path, default=HERE / "out", help="where the model files go")
    p.add_argument("--epochs", type=int, help="epochs of each run (default: the options')")
    p.add_argument("--budget", type=int, help="seconds the deeper run may take, 0 for no limit (default: the options')")
    p.add_argument("--device", choices=["auto", "cpu"], default="auto")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="image loaders per process")
    p.add_argument("--eval-batch", type=int, default=64, help="images per process in a validation batch")
    args = p.parse_args()
    ctx = Ctx(args.device)
    torch.backends.cudnn.benchmark = True
    opts = {**DEFAULTS, **json.loads(args.options.read_text())}
    opts["augment"] = {**DEFAULTS["augment"], **opts["augment"]}
    if args.epochs:
        opts["epochs"] = args.epochs
    folder = D.Folder(args.data)
    if len(folder.names) < 2:
        raise SystemExit(f"{args.data}: training needs at least 2 classes with images, found {len(folder.names)}")
    train, val = D.stratified_split(folder.labels, opts["val_fraction"], opts["seed"])
    choice = opts["finetune"]
    ctx.say(f"{len(folder.paths)} images in {len(folder.names)} classes ({len(train)} training, {len(val)} "
            f"validation), mode {choice['kind']}, {ctx.world} process(es) on {ctx.device.type}")
    shipped, started = M.load_shipped(args.weights), time.time()
    runs, explanation = [], None
    if choice["kind"] in ("head", "auto"):
        feats = embed_all(M.folded_timm(shipped, 2), D.Views(folder, opts), len(folder.paths), ctx, args)
        # The head is small and trains in seconds: rank 0 alone trains it, the others go on to the deeper run.
        if ctx.rank == 0:
            runs.append(head_run(feats, folder.labels, train, val, opts, ctx))
    if choice["kind"] != "head":
        mode = AUTO_LORA if choice["kind"] == "auto" else dict(choice)
        runs.append(deep_run(folder, train, val, opts, mode, shipped, ctx, args))
    if ctx.rank != 0:
        return dist.destroy_process_group() if ctx.world > 1 else None
    kept = runs[0]
    if choice["kind"] == "auto":
        kept, explanation = choose(*runs)
    M.write_outputs(args.out, folder.names, kept, runs, explanation, shipped, opts, (train, val), ctx,
                    time.time() - started)
    if ctx.world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
