#!/usr/bin/env bash
# Fuzzes the input readers (issue 11): each cargo-fuzz target of fuzz/ for SECONDS (default 60), one at a time,
# seeded from the bad-input corpus (tests/fixtures/bad), then prints a markdown table (target, seconds,
# executions, crashes) and saves it in bench/results/. A crash leaves its input in fuzz/artifacts/TARGET/: make
# it a case of tests/fixtures/bad/cases.json and fix it.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: zip_reader image_decode saved_state weights
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). The fuzz build has its own
# target dir (fuzz/target): its instrumented artifacts are of no use to the app's build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(zip_reader image_decode saved_state weights)
export CARGO_TARGET_DIR="$PWD/fuzz/target"
[ -d tests/fixtures/bad/large ] || python3 scripts/make_bad_inputs.py
rustup run nightly cargo fuzz build -O >&2

# Seeds of each target: the corpus files it reads (and a few real photos for the image decoder).
seeds() {
  local files=tests/fixtures/bad/files large=tests/fixtures/bad/large
  case "$1" in
    zip_reader) ls "$files"/*.zip "$large"/*.zip ;;
    image_decode) ls "$files"/*.{jpg,png,bmp,svg,tif,heic} "$large"/*.png public/sample/animal/*.jpg | head -40 ;;
    saved_state) ls "$files"/snapshot_* ;;
    weights) ls "$files"/weights_* ;;
  esac
}
max_len() {
  case "$1" in
    zip_reader | image_decode) echo 4000000 ;;
    saved_state) echo 400000 ;;
    weights) echo 65536 ;;
  esac
}

started="$(date -u +%Y-%m-%d-%H%M)"
rows=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target" artifacts="fuzz/artifacts/$target" log="fuzz/artifacts/$target.log"
  mkdir -p "$corpus" "$artifacts"
  seeds "$target" | xargs -I{} cp {} "$corpus/"
  before=$(ls "$artifacts" | wc -l)
  echo "== $target: ${seconds} s" >&2
  start=$(date +%s)
  rc=0
  rustup run nightly cargo fuzz run -O "$target" "$corpus" -- -max_total_time="$seconds" -max_len="$(max_len "$target")" \
    -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(($(ls "$artifacts" | wc -l) - before))
  [ "$rc" -eq 0 ] || [ "$crashes" -gt 0 ] || crashes="exit $rc (see $log)"
  rows+=("| \`$target\` | $took | ${execs:-?} | $crashes |")
done

out="bench/results/${started}-fuzz.md"
{
  echo "# Fuzzing, $started UTC"
  echo
  echo "\`scripts/fuzz.sh $seconds\` on $(nproc) cores ($(rustup run nightly rustc --version)), cargo-fuzz $(cargo fuzz --version 2>/dev/null | awk '{print $2}'), libFuzzer, one target at a time, AddressSanitizer on, seeded from tests/fixtures/bad."
  echo
  echo "| target | seconds | executions | crashes |"
  echo "|---|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} | tee "$out"
echo "saved in $out" >&2
