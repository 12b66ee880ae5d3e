#!/usr/bin/env bash
# The CPU path against ONNX Runtime Web's wasm backend, in one run on this machine (issue 12 §1): our bare
# backbone on one thread (wasm-bindgen-test in headless Chromium), the app's own embedding phase (drop →
# features, bench/app_embed.mjs) on 1 thread and on the worker pool, and ORT-web wasm on 1 thread and on its
# default threads (bench/peers); and where a LoRA training step's time goes (tests/bench_train.rs). Prints markdown
# tables; saved to bench/results/. About 12 min on 2 cores.
#   bench/cpu.sh [images=400]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh >/dev/null
mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d-%H%M)-cpu.md"
{
  echo "# CPU path vs ONNX Runtime Web, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(chromium --version 2>/dev/null)"
  echo
  echo "## Our backbone, one thread (images/s; host array in → host array out)"
  echo
} | tee "$out"
WASM_BINDGEN_TEST_TIMEOUT=1200 cargo test --release --target wasm32-unknown-unknown --test bench_browser \
  -- --nocapture bench_cpu 2>&1 | grep -o 'BENCH .*' | sed 's/^BENCH //' | tee -a "$out"
{ echo; echo "## A LoRA training step on the CPU, one thread (tests/bench_train.rs)"; echo; } | tee -a "$out"
WASM_BINDGEN_TEST_TIMEOUT=1200 cargo test --release --target wasm32-unknown-unknown --test bench_train \
  -- --nocapture 2>&1 | grep -o 'BENCH .*' | sed 's/^BENCH //' | tee -a "$out"
{ echo; echo "## The app's embedding phase, drop → features (images the page embedded per second)"; echo; } | tee -a "$out"
trunk build >/dev/null 2>&1
node bench/app_embed.mjs "${1:-400}" 1,2 | tee -a "$out"
{ echo; echo "## ONNX Runtime Web, wasm backend, same machine, same run (bench/peers)"; echo; } | tee -a "$out"
bash bench/peers/run.sh --cases ort-wasm-1t,ort-wasm --batches 1,16 --iters 5 2>/dev/null | tee -a "$out"
echo "saved to $out" >&2
