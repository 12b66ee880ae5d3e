#!/usr/bin/env bash
# Issue 27 on the device machine's GPU: the native command (`ajuste`, burn-wgpu over Vulkan) beside PyTorch eager
# on the same GPU, and the exported torchrun recipe against `ajuste train` on the same data.
#
#   here:    bash bench/device/cli_gpu.sh pack      # release builds with --features vulkan, stripped, into .bin/
#   device:  carry [.gl, .bin]   bash bench/device/cli_gpu.sh run
#
# `run` writes to $OUT: letters26's training split (520 images) as a folder; `ajuste train --mode auto` on it
# (wall-clock), the recipe exported from that project and run with `torchrun --nproc_per_node 1` (wall-clock), both
# models measured by `ajuste eval` on the 1,040 held-out images; then training throughput (images/s) at batch 32
# and 64 of our trainer (examples/bench_finetune.rs) and of bench/pytorch_finetune.py. Every command's output is
# kept verbatim in $OUT (*.txt, *.err); the summary in $OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

pack() {
  source scripts/env.sh
  cargo build --release --features vulkan --bin ajuste --example bench_finetune --example bench_native
  mkdir -p .bin
  for exe in ajuste examples/bench_finetune examples/bench_native; do
    strip -o ".bin/$(basename $exe)" "$CARGO_TARGET_DIR/release/$exe"
  done
  xz -T2 -6 -f .bin/ajuste .bin/bench_finetune .bin/bench_native
  ls -la .bin
}

split() { # folder DIR PART: letters26's PART split as class folders
  python3 - "$1" "$2" <<'PY'
import json, os, shutil, sys
root = 'bench/data/letters26'
out, part = sys.argv[1], sys.argv[2]
for path in json.load(open(f'{root}/letters26_split.json'))[part]:
    os.makedirs(os.path.join(out, os.path.dirname(path)), exist_ok=True)
    shutil.copy(os.path.join(root, path), os.path.join(out, path))
PY
}

timed() { # NAME COMMAND…: runs it, stdout in $OUT/NAME.txt, stderr in NAME.err, wall seconds in NAME.seconds
  local name=$1 start
  shift
  start=$(date +%s.%N)
  "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" || echo "exit $?" >>"$OUT/$name.err"
  python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 2))" "$start" >"$OUT/$name.seconds"
}

run() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
  local bin=/tmp/cli-bin
  mkdir -p $bin && xz -dkc .bin/ajuste.xz >$bin/ajuste && xz -dkc .bin/bench_finetune.xz >$bin/bench_finetune
  chmod +x $bin/*
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >"$OUT/gpu.txt"
  python3 -c "import torch, timm, peft; print('torch', torch.__version__, 'timm', timm.__version__, 'peft', peft.__version__)" \
    >>"$OUT/gpu.txt" 2>&1 || true
  local data=/tmp/letters
  rm -rf $data && split $data/train train && split $data/test test

  timed auto_train $bin/ajuste train $data/train --device vulkan --out /tmp/auto
  timed auto_eval $bin/ajuste eval /tmp/auto/model.safetensors $data/test --device vulkan --json
  timed recipe_export $bin/ajuste export-recipe /tmp/auto/project.ajuste --out /tmp/recipe
  (cd /tmp/recipe && timed recipe_train torchrun --standalone --nproc_per_node 1 train.py)
  local recipe_model
  recipe_model=$(find /tmp/recipe -name model.safetensors -newer /tmp/recipe/train.py | head -1)
  timed recipe_eval $bin/ajuste eval "$recipe_model" $data/test --device vulkan --json

  for batch in 32 64; do
    timed "ours_b$batch" $bin/bench_finetune --device vulkan --no-accuracy --recipes lora8,last4 \
      --throughput-steps 40 --batch $batch
    timed "torch_b$batch" python3 bench/pytorch_finetune.py --steps 40 --batch $batch
  done
  summary >"$OUT/summary.md"
  cat "$OUT/summary.md"
}

summary() {
  echo "GPU and software: $(tr '\n' ' ' <"$OUT/gpu.txt")"
  echo
  echo "| run | wall-clock (s) | held-out accuracy (1,040 images) |"
  echo "|---|---:|---:|"
  for pair in "ajuste train (Auto, Vulkan):auto" "torchrun recipe (1 GPU):recipe"; do
    local label=${pair%%:*} key=${pair##*:}
    local acc
    acc=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['accuracy'], 4))" \
      "$OUT/${key}_eval.txt" 2>/dev/null || echo "?")
    echo "| $label | $(printf %.1f "$(cat "$OUT/${key}_train.seconds")") | $acc |"
  done
  for batch in 32 64; do
    echo
    grep -A3 "fine-tuning throughput" "$OUT/ours_b$batch.txt" || true
    echo
    grep -A3 "^| recipe" "$OUT/torch_b$batch.txt" || true
  done
}

"$@"
