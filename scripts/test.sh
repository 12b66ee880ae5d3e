#!/usr/bin/env bash
# Runs every test: formatting, clippy (native and wasm), native unit + integration tests, the in-browser tests
# (headless Chromium, WebGPU and CPU), the end-to-end test of the built app, and a few of its journeys again in
# Chromium, Firefox and WebKit (xbrowser). Prints one line per suite and a final "N passed, N failed"; exits
# non-zero if anything failed or did not run.
#   scripts/test.sh                 # everything
#   scripts/test.sh native browser  # only some suites: lint native browser e2e xbrowser
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# These point the tests elsewhere (another build, rewriting a fixture): the test command tests this tree as it is.
for var in AJUSTE_DIST AJUSTE_BLESS; do
  if [ -n "${!var:-}" ]; then echo "$var is set: it changes what the tests check; unset it to run them" >&2; echo "0 passed, 1 failed"; exit 1; fi
done

SUITES=("$@"); [ ${#SUITES[@]} -gt 0 ] || SUITES=(lint native browser e2e xbrowser)
LOG_DIR="${LOG_DIR:-$PWD/test-results}"; mkdir -p "$LOG_DIR"
declare -a LINES=(); PASSED=0; FAILED=0

stage_start() { STAGE_T0=$(date +%s); echo "== $1" >&2; }
# record <suite> <status 0|1> <passed> <failed> [note]
record() {
  local secs=$(( $(date +%s) - STAGE_T0 )) mark="ok"
  [ "$2" = 0 ] || mark="FAILED"
  PASSED=$((PASSED + $3)); FAILED=$((FAILED + $4))
  # a suite that failed without any failing test (build error, crash) still counts as one failure
  if [ "$2" != 0 ] && [ "$4" = 0 ]; then FAILED=$((FAILED + 1)); fi
  LINES+=("$(printf '%-8s %-6s %4s passed %4s failed  %5ss  %s' "$1" "$mark" "$3" "$4" "$secs" "${5:-}")")
}
# Sum cargo's "test result:" lines in a log.
count() { grep -hoE "test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed" "$1" | awk '{p+=$4; f+=$6} END {print p+0, f+0}'; }

stage_start setup
if ! bash scripts/setup.sh >"$LOG_DIR/setup.log" 2>&1; then
  cat "$LOG_DIR/setup.log" >&2; echo "setup failed: nothing can run" >&2; echo "0 passed, 1 failed"; exit 1
fi
cargo fetch --target wasm32-unknown-unknown --quiet

for suite in "${SUITES[@]}"; do
  case "$suite" in
  lint)
    stage_start lint
    log="$LOG_DIR/lint.log"; ok=0
    { cargo fmt --all --check && cargo clippy --release --all-targets -- -D warnings \
      && cargo clippy --release --example bench_native --features bench-burn-head -- -D warnings \
      && cargo clippy --release --no-default-features --lib -- -D warnings \
      && cargo clippy --release --target wasm32-unknown-unknown --lib --bins -- -D warnings \
      && cargo clippy --release --target wasm32-unknown-unknown --no-default-features --bin ajuste -- -D warnings \
      && cargo clippy --release --target wasm32-unknown-unknown --test browser --test bench_browser \
      --test bench_webgpu --test bench_webgpu_worker --test bench_train -- -D warnings; } >"$log" 2>&1 || ok=1
    [ $ok = 0 ] || tail -40 "$log" >&2
    record lint $ok $((1 - ok)) 0 "fmt + clippy (native, wasm) with -D warnings"
    ;;
  native)
    stage_start native
    log="$LOG_DIR/native.log"; ok=0
    cargo test --release --all-targets --no-fail-fast >"$log" 2>&1 || ok=1
    read -r p f < <(count "$log")
    [ $ok = 0 ] || grep -E "^test .* FAILED|panicked|error(\[|:)" "$log" | head -30 >&2
    record native $ok "$p" "$f" "cargo test (unit, golden, ingest, head training, export)"
    ;;
  browser)
    stage_start browser
    log="$LOG_DIR/browser.log"; ok=0
    # SwiftShader WebGPU is slow: the golden run there takes minutes, not the default 20 s.
    WASM_BINDGEN_TEST_TIMEOUT=1200 cargo test --release --target wasm32-unknown-unknown --test browser \
      -- --nocapture >"$log" 2>&1 || ok=1
    read -r p f < <(count "$log")
    if [ $ok = 0 ] && [ "$p" -lt 5 ]; then ok=1; echo "browser tests did not run" >&2; fi
    [ $ok = 0 ] || tail -40 "$log" >&2
    record browser $ok "$p" "$f" "wasm-bindgen-test in headless Chromium: WebGPU + CPU golden and LoRA steps, our WebGPU 1×1 kernel"
    ;;
  e2e)
    stage_start e2e; E2E_RAN=1
    log="$LOG_DIR/e2e.log"; ok=0
    # tests/e2e/cli_roundtrip also runs the native command (built by the native suite before it; a no-op then).
    { trunk build && cargo build --release --bin ajuste && node --test --test-reporter=spec tests/e2e/; } >"$log" 2>&1 || ok=1
    p=$(grep -cE "^\s*✔ " "$log"); f=$(grep -cE "^\s*✖ " "$log")
    # node's spec reporter repeats failures in a summary block: count each failure once
    f=$(grep -E "^\s*✖ " "$log" | grep -v "failing tests" | sed 's/ ([0-9.]*ms)$//' | sort -u | wc -l)
    [ $ok = 0 ] || tail -60 "$log" >&2
    record e2e $ok "$p" "$f" "Playwright + Debian Chromium on the built app (screenshots in test-results/)"
    ;;
  xbrowser)
    stage_start xbrowser
    log="$LOG_DIR/xbrowser.log"; ok=0
    # dist/ is built by the e2e suite when it ran before; otherwise this suite builds it as e2e does.
    build=true; [ "${E2E_RAN:-}" = 1 ] || build="trunk build"
    { $build && node --test --test-reporter=spec tests/xbrowser/; } >"$log" 2>&1 || ok=1
    p=$(grep -cE "^\s*✔ " "$log")
    f=$(grep -E "^\s*✖ " "$log" | grep -v "failing tests" | sed 's/ ([0-9.]*ms)$//' | sort -u | wc -l)
    [ $ok = 0 ] || tail -60 "$log" >&2
    record xbrowser $ok "$p" "$f" "the same journeys in Chromium, Firefox and WebKit over WebDriver (screenshots in test-results/)"
    ;;
  *) echo "unknown suite: $suite (lint native browser e2e xbrowser)" >&2; exit 2 ;;
  esac
done

echo
printf '%s\n' "${LINES[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
