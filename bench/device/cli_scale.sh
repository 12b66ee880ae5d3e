#!/usr/bin/env bash
# Issue 27 at scale on the device machine (one GPU, 16 cores): `ajuste train` on 100,000 and 10,000 images made by
# bench/make_big.py, the embedding throughput beside PyTorch eager, `--devices` on the GPU and on the CPU's cores.
#
#   here:    bash bench/device/cli_gpu.sh pack     # release ajuste, bench_finetune, bench_native (--features vulkan)
#   device:  carry [.gl, .bin]   bash bench/device/cli_scale.sh big     # 100,000 images, head only; embedding
#            carry [.gl, .bin]   bash bench/device/cli_scale.sh all     # big, then --devices on CPU and GPU, 10,000 in Auto
#            carry [.gl, .bin]   bash bench/device/cli_scale.sh mapped  # the memory-mapped caches at 100,000 and 10,000
#
# Every command's stdout and stderr are kept in $OUT (*.txt, *.err; peak memory from bench/peak_mem.py, anonymous
# and mapped files apart); the figures are printed as they come (the device returns only a few files).
set -euo pipefail
cd "$(dirname "$0")/../.."

setup() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
  bin=/tmp/cli-bin
  mkdir -p $bin
  for exe in ajuste bench_finetune bench_native; do
    [ -f .bin/$exe.xz ] && xz -dkc .bin/$exe.xz >$bin/$exe
  done
  chmod +x $bin/*
  echo "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(nproc) cores"
}

timed() { # NAME COMMAND…: stdout in $OUT/NAME.txt, stderr (with bench/peak_mem.py's line) in NAME.err; prints a summary
  local name=$1 start
  shift
  start=$(date +%s.%N)
  python3 bench/peak_mem.py -- "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" || echo "exit $?" >>"$OUT/$name.err"
  python3 - "$start" "$OUT/$name.err" "$name" <<'PY'
import re, sys, time
seconds = time.time() - float(sys.argv[1])
err = open(sys.argv[2]).read()
print(f"## {sys.argv[3]}: {seconds:.1f} s wall")
for line in err.splitlines():
    if re.match(r"(Training|Resuming) |Features|Training the head|Preparing|Fine-tuning|Evaluating|Kept |exit |ajuste:|Activations|peak memory", line):
        print("   ", line)
PY
}

accuracy() { # MODEL DATA: held-out accuracy by ajuste eval
  $bin/ajuste eval "$1" "$2" --device vulkan --json 2>/dev/null | python3 -c "import json, sys; print(json.load(sys.stdin)['accuracy'])"
}

split() { # DIR PART: letters26's PART split as class folders
  python3 - "$1" "$2" <<'PY'
import json, os, shutil, sys
root = 'bench/data/letters26'
out, part = sys.argv[1], sys.argv[2]
for path in json.load(open(f'{root}/letters26_split.json'))[part]:
    os.makedirs(os.path.join(out, os.path.dirname(path)), exist_ok=True)
    shutil.copy(os.path.join(root, path), os.path.join(out, path))
PY
}

big() {
  setup
  timed make_100k python3 bench/make_big.py /tmp/big100k --count 100000 --jobs "$(nproc)"
  du -sh /tmp/big100k
  timed head_100k $bin/ajuste train /tmp/big100k --mode head --device vulkan --out /tmp/head100k
  du -sh /tmp/head100k/features.bin /tmp/head100k/project.ajuste 2>/dev/null || true
  echo "## embedding, batch 64 (ours: host pixels in, features out; PyTorch eager the same way)"
  $bin/bench_native --gpu-only --batches 64 --iters 20 2>&1 | tail -8
  python3 bench/pytorch_embed.py --batches 64 --iters 20 2>&1 | tail -4
}

# Both in one call, the most wanted figures first (the device's time is short).
all() {
  big
  local letters=/tmp/letters
  rm -rf $letters && split $letters/train train && split $letters/test test
  for devices in 0 0,1,2,3 all; do
    timed "head_cpu_$devices" $bin/ajuste train $letters/train --mode head --device cpu --devices $devices \
      --out "/tmp/cpu_$devices"
  done
  cmp /tmp/cpu_0/model.safetensors /tmp/cpu_all/model.safetensors && echo "CPU: 1 thread and all give the same model"
  for devices in 0 0,0; do
    timed "lora_vulkan_$devices" $bin/ajuste train $letters/train --mode lora --device vulkan --devices $devices \
      --out "/tmp/lora_$devices"
    echo "   held-out accuracy: $(accuracy "/tmp/lora_$devices/model.safetensors" $letters/test)"
  done
  echo '{"budget_seconds": 60}' >/tmp/budget.json
  timed make_10k python3 bench/make_big.py /tmp/big10k --count 10000 --jobs "$(nproc)"
  timed auto_10k $bin/ajuste train /tmp/big10k --device vulkan --options /tmp/budget.json --out /tmp/auto10k
  echo "   held-out accuracy (letters26 test, 1,040 images): $(accuracy /tmp/auto10k/model.safetensors $letters/test)"
}

# The memory-mapped caches: 100,000 images head only (features mapped), then again from the features file; 10,000
# images in LoRA with the cut activations mapped from disk (--disk-cache 8) and kept in memory (0, the default: 256 MB).
mapped() {
  mapped_head
  mapped_lora
}

mapped_head() {
  setup
  timed make_100k python3 bench/make_big.py /tmp/big100k --count 100000 --jobs "$(nproc)"
  timed head_100k $bin/ajuste train /tmp/big100k --mode head --device vulkan --out /tmp/head100k
  timed head_100k_again $bin/ajuste train /tmp/big100k --mode head --device vulkan --out /tmp/head100k
  rm -rf /tmp/big100k /tmp/head100k
}

mapped_lora() { # EPOCHS (default 3) of LoRA, with CACHES (default "8 0") as --disk-cache
  [ -n "${bin:-}" ] || setup
  timed make_10k python3 bench/make_big.py /tmp/big10k --count 10000 --jobs "$(nproc)"
  for cache in ${CACHES:-8 0}; do
    timed "lora_10k_disk_cache_$cache" $bin/ajuste train /tmp/big10k --mode lora --epochs "${EPOCHS:-3}" \
      --device vulkan --disk-cache $cache --out "/tmp/lora10k_$cache"
  done
}

"$@"
