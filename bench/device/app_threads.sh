#!/usr/bin/env bash
# Issue 26: the page's CPU path on the device machine's 16 cores, 1 to 16 threads (`?backend=cpu&threads=N`), the
# default Auto on 260 letters (bench/data/letters26's training split, 10 per class, as a .zip picked in the page),
# from Train to done; the local twin is bench/app_threads.mjs (Playwright, this machine's 2 cores).
#
# The device has no Node and no Chromium, and a call carries at most 64 MiB: Debian's chromium-headless-shell
# travels in parts (as bench/device/browser_gpu.sh does), the app and the data beside it:
#   bench/device/app_threads.sh pack     # here: the shell in thirds in .chr/p1..p3; libraries, app and data in p4
#                                        # (`pack_rest`: p4 alone, after a change to the app)
#   carry [.chr/p1]    bash bench/device/app_threads.sh stage .chr/p1
#   carry [.chr/p2]    bash bench/device/app_threads.sh stage .chr/p2
#   carry [.chr/p3]    bash bench/device/app_threads.sh stage .chr/p3
#   carry [.chr/p4]    bash bench/device/app_threads.sh stage .chr/p4 && bash bench/device/app_threads.sh run 1,2
#   (no carry)         bash bench/device/app_threads.sh run 4,8,16
# `run` prints one markdown row per thread count and copies them to $OUT/threads.md; files under /tmp outlive a
# call while the machine stays warm.
set -euo pipefail
cd "$(dirname "$0")/../.."

pack() {
  local work=/tmp/thr-pack
  rm -rf "$work" .chr && mkdir -p "$work" .chr/p1 .chr/p2 .chr/p3 .chr/p4
  (cd "$work" && apt-get download chromium-headless-shell chromium-common >/dev/null 2>&1)
  mkdir -p "$work/x" && for d in "$work"/*.deb; do dpkg -x "$d" "$work/x"; done
  local lib=$work/x/usr/lib/chromium c=$work/c rt=$work/rt
  mkdir -p "$c/locales" "$rt/lib" "$rt/fonts"
  cp "$lib"/{chromium-headless-shell,headless_lib_data.pak,headless_lib_strings.pak,headless_command_resources.pak} "$c/"
  cp "$lib"/{icudtl.dat,v8_context_snapshot.bin,snapshot_blob.bin} "$c/"
  cp "$lib/locales/en-US.pak" "$c/locales/"
  ldd "$lib/chromium-headless-shell" | awk '/=>/ {print $3}' \
    | grep -vE '/(libc|libm|libpthread|libstdc\+\+|libgcc_s|libz|libdl|librt)\.so' | sort -u | xargs -I{} cp -L {} "$rt/lib/"
  find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name 'lib*.so*' \
    \( -name 'libsoftokn3.so' -o -name 'libfreebl*.so' -o -name 'libnssckbi.so' -o -name 'libnssdbm3.so' \) -exec cp -L {} "$rt/lib/" \;
  cp -L /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "$rt/fonts/"
  tar -C "$work" -cf - c/chromium-headless-shell c/headless_lib_data.pak c/headless_lib_strings.pak \
    c/headless_command_resources.pak | xz -9 -T2 | split -b 21M - "$work/shell.xz."
  mv "$work/shell.xz.aa" .chr/p1/ && mv "$work/shell.xz.ab" .chr/p2/ && mv "$work"/shell.xz.a? .chr/p3/
  pack_rest
}

# p4 alone (the app changed): the libraries packed by `pack`, today's dist/ and the data.
pack_rest() {
  local work=/tmp/thr-pack
  rm -rf "$work/dist" "$work/data" && mkdir -p "$work/dist" "$work/data" && tar -C dist --exclude='*.br' --exclude='*.gz' -cf - . | tar -C "$work/dist" -xf -
  python3 - "$work/data/letters.zip" <<'PY'
import json, sys, zipfile
root = 'bench/data/letters26'
train = json.load(open(f'{root}/letters26_split.json'))['train']
per = {}
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for path in train:
        cls = path.split('/')[0]
        if per.get(cls, 0) < 10:
            per[cls] = per.get(cls, 0) + 1
            z.write(f'{root}/{path}', path)
print(sum(per.values()), 'images in', len(per), 'classes')
PY
  rm -rf .chr/p4 && mkdir -p .chr/p4
  tar -C "$work" --exclude=c/chromium-headless-shell --exclude='c/headless_*' -cf - c rt dist data | xz -9 -T2 > .chr/p4/rest.tar.xz
  du -sh .chr/p*
}

stage() { cp "$1"/* /tmp/; }

run() {
  local threads=${1:-1,2} out=${OUT:-/tmp/out}
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
  mkdir -p "$out" /tmp/b
  if [ ! -x /tmp/b/c/chromium-headless-shell ]; then
    xz -dc /tmp/rest.tar.xz | tar -C /tmp/b -xf -
    cat /tmp/shell.xz.a? | xz -dc | tar -C /tmp/b -xf -
  fi
  printf '<fontconfig><dir>/tmp/b/rt/fonts</dir><cachedir>/tmp/fccache</cachedir></fontconfig>\n' > /tmp/b/fonts.conf
  export FONTCONFIG_FILE=/tmp/b/fonts.conf LD_LIBRARY_PATH=/tmp/b/c:/tmp/b/rt/lib
  python3 -m http.server 8003 --bind 127.0.0.1 --directory /tmp/b/dist >/dev/null 2>&1 &
  sleep 1
  local cdp=(python3 bench/device/cdp.py --chromium /tmp/b/c/chromium-headless-shell)
  for f in --headless --no-sandbox --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-quic --disable-dev-shm-usage; do cdp+=(--flag="$f"); done
  # Train once the 260 images are in; the status line's texts (with their times) kept for the LoRA steps' rate.
  local steps="(() => { const q = (id) => document.querySelector('[data-testid=' + id + ']'); const w = window;
    const s = q('training-status'); if (s?.dataset.state === 'done' || s?.dataset.state === 'error') return true;
    if (!w.__c && q('dataset-summary')?.dataset.images === '260') { w.__seen = []; w.__t0 = performance.now();
      new MutationObserver(() => w.__seen.push([performance.now(), s.textContent])).observe(s, {childList: true, characterData: true, subtree: true});
      q('train-button').click(); w.__c = 1; } return false; })()"
  local result="({cores: navigator.hardwareConcurrency, status: {...document.querySelector('[data-testid=training-status]').dataset},
    timings: document.querySelector('[data-testid=timings]')?.textContent, t0: window.__t0, seen: window.__seen})"
  local ready="(document.querySelector('[data-testid=model-status]')?.textContent || '').includes('ready')"
  echo "# The page's CPU path on $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(date -u '+%Y-%m-%d %H:%M UTC')" | tee -a "$out/threads.md"
  for n in ${threads//,/ }; do
    "${cdp[@]}" "http://127.0.0.1:8003/?backend=cpu&threads=$n" --timeout 560 --files '[data-testid=zip-input]' \
      /tmp/b/data/letters.zip --files-when "$ready" --until "$steps" --result "$result" | tail -1 > "/tmp/b/t$n.json" || true
    python3 - "$n" "/tmp/b/t$n.json" <<'PY' | tee -a "$out/threads.md"
import json, re, statistics, sys
n, path = sys.argv[1], sys.argv[2]
try:
    r = json.loads(open(path).read())
except Exception as e:
    print(f'| {n} | (no result: {e}) |'); sys.exit()
seen = r.get('seen') or []
end = seen[-1][0] if seen else r['t0']
lora = [(t, s) for t, s in seen if 'LoRA' in s]
rates = [float(m.group(1)) for _, s in lora if (m := re.search(r'step \d+ / \d+ \(([\d.]+) images/s', s))]
st = r['status']
print(f"| {n} | {(end - r['t0']) / 1000:.1f} | {statistics.median(rates) if rates else float('nan'):.1f} | "
      f"{(lora[-1][0] - lora[0][0]) / 1000 if lora else float('nan'):.1f} | {st.get('state')} {st.get('mode')} | "
      f"{float(st.get('valAccuracy') or 'nan'):.3f} | {st.get('epoch')} | {st.get('valLoss')} | {r.get('cores')} | "
      f"{(r.get('timings') or '').strip()} |")
PY
  done
}

"$@"
