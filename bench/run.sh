#!/usr/bin/env bash
# The benchmark: our backbone and head training in headless Chromium next to the peers (ONNX Runtime Web, TF.js)
# (bench/peers), in one run on this machine. Prints markdown tables; also saved to bench/results/.
#   bench/run.sh            # everything (~30 min on 2 cores without a GPU; SwiftShader WebGPU is slow)
#   bench/run.sh --no-peers # only ours
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh >/dev/null
mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d-%H%M).md"
{
  echo "# Benchmark $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(chromium --version 2>/dev/null)"
  echo
  echo "## Backbone in the browser (burn), and head training on the gcompris5 reference embeddings"
  echo
} | tee "$out"
# burn's autodiff (for timing burn's own head training) changes burn's build: kept in its own target dir.
WASM_BINDGEN_TEST_TIMEOUT=3000 cargo test --release --target wasm32-unknown-unknown --features bench-burn-head \
  --target-dir "$CARGO_TARGET_DIR/bench-burn-head" --test bench_browser -- --nocapture bench_embedding_and_head 2>&1 \
  | grep -o 'BENCH .*' | sed 's/^BENCH //' | tee -a "$out"
{ echo; echo "## The app, drop → trained head, bundled sample (36 images, 3 classes)"; echo; } | tee -a "$out"
trunk build >/dev/null 2>&1
node bench/app_timing.mjs cpu,webgpu | tee -a "$out"
if [ "${1:-}" != "--no-peers" ]; then
  { echo; echo "## Peers, same machine, same hour (bench/peers)"; echo; } | tee -a "$out"
  bash bench/peers/run.sh --batches 1,16 --iters 3 2>/dev/null | tee -a "$out"
fi
echo "saved to $out" >&2
