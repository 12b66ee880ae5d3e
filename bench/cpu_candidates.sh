#!/usr/bin/env bash
# Which CPU backend for the browser: burn's flex and (deprecated) ndarray backends, each built with and without
# wasm SIMD, embedding EfficientNet-Lite0 in headless Chromium. Prints a markdown table per build; saved to
# bench/results/. Each build has its own target dir (burn is rebuilt per flag set): ~10 min each the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh >/dev/null
out="bench/results/$(date -u +%Y-%m-%d-%H%M)-cpu-candidates.md"
echo "# CPU backends in the browser, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(chromium --version 2>/dev/null)" | tee "$out"
for simd in on off; do
  flags="-C target-feature=+simd128"
  [ "$simd" = on ] || flags="-C target-feature=-simd128"
  echo | tee -a "$out"
  RUSTFLAGS="$flags" WASM_BINDGEN_TEST_TIMEOUT=3000 cargo test --release --target wasm32-unknown-unknown \
    --features bench-cpu-candidates --target-dir "$CARGO_TARGET_DIR/bench-cpu-simd-$simd" --test bench_browser \
    -- --nocapture 2>&1 | grep -o 'BENCH .*' | sed 's/^BENCH //' | tee -a "$out"
done
echo "saved to $out" >&2
