#!/usr/bin/env bash
# Issue 12 §3, "in a browser on that GPU": our backbone on Chromium's WebGPU on the device machine's GPU (Dawn's
# Vulkan backend; tests/bench_webgpu.rs, host data in → embeddings out) beside ONNX Runtime Web's WebGPU kernels
# (bench/peers/ort.html) in the same browser build and the same call.
#
# The device machine has Python but no Node, no Chromium and no chromedriver; the tool there carries at most 64 MiB
# per call, working tree included. So:
#   bench/device/browser_gpu.sh pack      # here (pack_rest: only p3, after a change to our benchmark): Debian's chromium-headless-shell, its libraries, the test's wasm and
#                                         # its runner, ORT-web's files, packed in .chr/p1, .chr/p2, .chr/p3
# then three device calls while the machine stays warm (files under /tmp outlive a call, not a release):
#   carry [.chr/p1]              bash bench/device/browser_gpu.sh stage .chr/p1
#   carry [.chr/p2]              bash bench/device/browser_gpu.sh stage .chr/p2
#   carry [.gl, .chr/p3]         bash bench/device/browser_gpu.sh run [batches=1,16,64,128]
# `run` prints markdown tables and copies them to $OUT; `app` runs the app's page instead (pack_app, below).
# Locally, `run` (or `app`) with CHROMIUM=<binary> and NATIVE=1 uses this
# machine's Chromium on SwiftShader (a check of the harness, not a measurement; use small batches).
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERS_NM=${PEERS_NODE_DIR:-$HOME/.cache/ajuste-peers}/node_modules

pack() {
  source scripts/env.sh
  local work=/tmp/chr-pack
  rm -rf "$work" .chr && mkdir -p "$work" .chr/p1 .chr/p2 .chr/p3
  (cd "$work" && apt-get download chromium-headless-shell chromium-common >/dev/null 2>&1)
  mkdir -p "$work/x" && for d in "$work"/*.deb; do dpkg -x "$d" "$work/x"; done
  local lib=$work/x/usr/lib/chromium c=$work/c rt=$work/rt
  mkdir -p "$c/locales" "$rt/lib" "$rt/fonts"
  cp "$lib"/{chromium-headless-shell,headless_lib_data.pak,headless_lib_strings.pak,headless_command_resources.pak} "$c/"
  cp "$lib"/{icudtl.dat,v8_context_snapshot.bin,snapshot_blob.bin,libEGL.so,libGLESv2.so,libvulkan.so.1} "$c/"
  cp "$lib/locales/en-US.pak" "$c/locales/"
  # Every library the shell links that a bare Ubuntu lacks, and NSS's dlopen'ed modules; a font (Skia dies without).
  ldd "$lib/chromium-headless-shell" | awk '/=>/ {print $3}' \
    | grep -vE '/(libc|libm|libpthread|libstdc\+\+|libgcc_s|libz|libdl|librt)\.so' | sort -u | xargs -I{} cp -L {} "$rt/lib/"
  find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name 'lib*.so*' \
    \( -name 'libsoftokn3.so' -o -name 'libfreebl*.so' -o -name 'libnssckbi.so' -o -name 'libnssdbm3.so' \) -exec cp -L {} "$rt/lib/" \;
  cp -L /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "$rt/fonts/"
  # The shell (binary and paks, ~62 MB xz) in thirds: one in p1 (room there for other carried files), two in p2;
  # everything else in p3.
  tar -C "$work" -cf - c/chromium-headless-shell c/headless_lib_data.pak c/headless_lib_strings.pak \
    c/headless_command_resources.pak | xz -9 -T2 | split -b 21M - "$work/shell.xz."
  mv "$work/shell.xz.aa" .chr/p1/ && mv "$work"/shell.xz.a? .chr/p2/
  pack_rest
}

# p3 alone (our benchmark changed): the shell's parts are kept.
pack_rest() {
  source scripts/env.sh
  local work=/tmp/chr-pack
  # Our benchmarks' wasm (the weights are inside; `test:features:name`, for variants built with a feature): the main
  # thread's and a worker's; and the runner that serves them. Cargo names each file it built.
  rm -rf "$work/ours" && mkdir -p "$work/ours" && cp "$(command -v wasm-bindgen-test-runner)" "$work/ours/"
  local spec test features name built
  for spec in bench_webgpu::bench_webgpu bench_webgpu_worker::bench_webgpu_worker; do
    IFS=: read -r test features name <<<"$spec"
    built=$(cargo test --release --target wasm32-unknown-unknown --test "$test" ${features:+--features "$features"} \
      --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\.wasm\))/\1/p')
    cp "$built" "$work/ours/$name.wasm"
  done
  ls -l "$work/ours"
  local dist=onnxruntime-web/dist
  mkdir -p "$work/ort/$dist" && cp "$PEERS_NM/$dist"/{ort.min.mjs,ort-wasm-simd-threaded.jsep.mjs,ort-wasm-simd-threaded.jsep.wasm} "$work/ort/$dist/"
  rm -rf .chr/p3 && mkdir -p .chr/p3
  tar -C "$work" --exclude=c/chromium-headless-shell --exclude='c/headless_*' -cf - c rt ours ort | xz -9 -T2 > .chr/p3/rest.tar.xz
  du -sh .chr/p1 .chr/p2 .chr/p3
}

stage() { cp "$1"/* /tmp/; }

# On the device machine: the Vulkan loader, the shell and its libraries unpacked under /tmp/b; sets CHROMIUM and
# the flags that put Dawn and ANGLE on the GPU's Vulkan driver.
device_chromium() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  xz -dc .chr/p3/rest.tar.xz | tar -C /tmp/b -xf -
  cat /tmp/shell.xz.a? | xz -dc | tar -C /tmp/b -xf -
  printf '<fontconfig><dir>/tmp/b/rt/fonts</dir><cachedir>/tmp/fccache</cachedir></fontconfig>\n' > /tmp/b/fonts.conf
  export FONTCONFIG_FILE=/tmp/b/fonts.conf LD_LIBRARY_PATH=/tmp/b/c:/tmp/b/rt/lib:/usr/local/nvidia/lib64
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json CHROMIUM=/tmp/b/c/chromium-headless-shell
  flags=(--use-angle=vulkan --use-vulkan --disable-vulkan-surface --enable-features=Vulkan --ignore-gpu-blocklist)
}

# The app itself (a `trunk build`, without its pre-compressed copies) packed for one more staging call:
#   bench/device/browser_gpu.sh pack_app     # here: .chr/app/dist.tar.xz
#   carry [.chr/app]         bash bench/device/browser_gpu.sh stage .chr/app     (after the two shell calls)
#   carry [.gl, .chr/p3]     bash bench/device/browser_gpu.sh app
pack_app() {
  rm -rf .chr/app && mkdir -p .chr/app
  tar -C dist --exclude='*.br' --exclude='*.gz' -cf - . | xz -6 -T2 > .chr/app/dist.tar.xz
  du -sh .chr/app
}

# Opens the page (WebGPU picked as a user would get it), loads the bundled sample, trains the head and prints the
# page's own status and timings line (features: images/s of the embedding phase, decoding included).
app() {
  local out=${OUT:-/tmp/out}
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
  local dist=/tmp/app
  mkdir -p "$out" /tmp/b
  if [ -z "${NATIVE:-}" ]; then
    device_chromium
    mkdir -p /tmp/app && xz -dc /tmp/dist.tar.xz | tar -C /tmp/app -xf -
  else
    flags=(--enable-unsafe-swiftshader) dist=$PWD/dist
  fi
  python3 - "$dist" <<'PY' &
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header('Cross-Origin-Opener-Policy', 'same-origin')
        self.send_header('Cross-Origin-Embedder-Policy', 'require-corp')
        super().end_headers()
    def log_message(self, *a): pass
H.extensions_map['.wasm'] = 'application/wasm'
http.server.ThreadingHTTPServer(('127.0.0.1', 8002), functools.partial(H, directory=sys.argv[1])).serve_forever()
PY
  sleep 1
  flags+=(--headless --no-sandbox --no-first-run --disable-background-networking --disable-component-update
    --disable-sync --disable-quic --disable-dev-shm-usage --enable-unsafe-webgpu)
  local cdp=(python3 bench/device/cdp.py --chromium "$CHROMIUM")
  for f in "${flags[@]}"; do cdp+=(--flag="$f"); done
  # One step per poll: sample once the model is ready, the head-only mode once the 36 images are in, then Train.
  local steps="(() => { const q = (id) => document.querySelector('[data-testid=' + id + ']'); const w = window;
    const s = q('training-status')?.dataset.state; if (s === 'done' || s === 'error') return true;
    if (!w.__a) { if ((q('model-status')?.textContent || '').includes('ready') && q('sample-button')) { q('sample-button').click(); w.__a = 1; } return false; }
    if (!w.__b) { if (q('dataset-summary')?.dataset.images === '36') { const m = q('finetune-mode'); m.value = 'head';
      m.dispatchEvent(new Event('input', {bubbles: true})); m.dispatchEvent(new Event('change', {bubbles: true})); w.__b = 1; } return false; }
    if (!w.__c) { q('train-button').click(); w.__c = 1; } return false; })()"
  local result="({runs_on: document.querySelector('header')?.innerText.replace(/\s+/g, ' ').slice(-120),
    status: document.querySelector('[data-testid=training-status]')?.textContent,
    timings: document.querySelector('[data-testid=timings]')?.textContent})"
  { echo "# The app on Chromium WebGPU, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null), $(date -u '+%Y-%m-%d %H:%M UTC')"; echo;
    "${cdp[@]}" "http://127.0.0.1:8002/" --timeout 300 --until "$steps" --result "$result" | tail -5; } | tee "$out/app_gpu.md"
}

run() {
  local batches=${1:-1,16,64,128} out=${OUT:-/tmp/out}
  trap 'kill $(jobs -p) 2>/dev/null' EXIT  # the test runner and the static server, if this ends early
  if python3 -c 'import socket,sys; sys.exit(socket.socket().connect_ex(("127.0.0.1", 8001)) != 0)'; then
    echo "port 8001 is taken (an earlier test runner?)" >&2
    return 1
  fi
  mkdir -p "$out" /tmp/b
  if [ -z "${NATIVE:-}" ]; then
    device_chromium
    runner=/tmp/b/ours/wasm-bindgen-test-runner wasms=(/tmp/b/ours/*.wasm) ort=/tmp/b/ort
  else
    flags=(--enable-unsafe-swiftshader)
    runner=$(command -v wasm-bindgen-test-runner) ort=$PEERS_NM
    wasms=()
    for t in bench_webgpu bench_webgpu_worker; do
      wasms+=("$(ls -t "${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/release/deps/$t-*.wasm | head -1)")
    done
  fi
  # ONLY="<name> ...": some of our benchmarks (bench_webgpu, bench_webgpu_worker); NO_ORT=1:
  # ours alone.
  if [ -n "${ONLY:-}" ]; then
    local keep=() w o
    for w in "${wasms[@]}"; do
      for o in $ONLY; do case "$(basename "$w")" in "$o".wasm | "$o"-*.wasm) keep+=("$w") ;; esac; done
    done
    wasms=("${keep[@]}")
  fi
  flags+=(--headless --no-sandbox --no-first-run --disable-background-networking --disable-component-update
    --disable-sync --disable-quic --disable-dev-shm-usage --enable-unsafe-webgpu)
  local cdp=(python3 bench/device/cdp.py --chromium "$CHROMIUM")
  for f in "${flags[@]}"; do cdp+=(--flag="$f"); done
  {
    echo "# Chromium WebGPU on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo 'this machine'), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "$("$CHROMIUM" --version 2>/dev/null || true); flags: ${flags[*]}"
    echo
    echo "## Ours: tests/bench_webgpu.rs (burn-wgpu on the page's WebGPU), images/s"
    echo
  } | tee "$out/browser_gpu.md"
  local wasm runner_pid
  for wasm in "${wasms[@]}"; do
    echo "### $(basename "$wasm" .wasm)" | tee -a "$out/browser_gpu.md"
    NO_HEADLESS=1 WASM_BINDGEN_TEST_ADDRESS=127.0.0.1:8001 "$runner" "$wasm" bench_webgpu --nocapture >/tmp/b/runner.log 2>&1 &
    runner_pid=$!
    for _ in $(seq 60); do grep -q 'available at' /tmp/b/runner.log && break; sleep 1; done
    "${cdp[@]}" "http://127.0.0.1:8001/?batches=$batches&iters=${ITERS:-20}${QUERY:+&$QUERY}" --grep BENCH --timeout 300 \
      --until "(document.getElementById('output')||{}).textContent.includes('test result')" \
      --result "document.getElementById('output').textContent.slice(-200)" | sed 's/^BENCH //' | tee -a "$out/browser_gpu.md"
    kill $runner_pid 2>/dev/null || true
    wait $runner_pid 2>/dev/null || true
    echo | tee -a "$out/browser_gpu.md"
  done
  [ -n "${NO_ORT:-}" ] && return 0
  { echo; echo "## ONNX Runtime Web 1.30, WebGPU (JSEP), bench/peers/ort.html, ms per run → images/s"; echo; } | tee -a "$out/browser_gpu.md"
  [ -f bench/peers/effl0_embed.onnx ] || python3 bench/peers/make_onnx.py --out bench/peers/effl0_embed.onnx >/dev/null
  python3 bench/peers/serve.py --port 8770 --node-modules "$ort" --quiet &
  local serve_pid=$!
  sleep 1
  "${cdp[@]}" "http://127.0.0.1:8770/ort.html?ep=webgpu&variant=jsep&batches=$batches&iters=${ITERS:-20}&warmup=2&budget=60" \
    --timeout 300 --until "document.title === 'finished'" --result 'window.__bench' > /tmp/b/ort.json || true
  kill $serve_pid 2>/dev/null || true
  python3 - /tmp/b/ort.json <<'EOF' | tee -a "$out/browser_gpu.md"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith('{')]
r = json.loads(lines[-1]) if lines else {}
print(f"adapter: {r.get('webgpu_adapter')}\n\n| batch | median ms | images/s | first (cold) ms | timed runs |\n|---:|---:|---:|---:|---:|")
for run in r.get('runs', []):
    print(f"| {run.get('batch')} | {run.get('median_ms')} | {run.get('ips')} | {run.get('cold_ms')} | {len(run.get('times_ms', []))} |")
if not lines: print('(no result)')
EOF
}

"$@"
