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

source bench/device/chromium_pack.sh

pack() {
  chr_pack_shell
  pack_rest
}

# p4 alone (the app changed): the libraries packed by `pack`, today's dist/ and the data.
pack_rest() {
  local work=$CHR_WORK
  rm -rf "$work/data" && mkdir -p "$work/data"
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
  chr_pack_rest
}

stage() { chr_stage "$1"; }

run() {
  local threads=${1:-1,2} out=${OUT:-/tmp/out}
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
  mkdir -p "$out"
  chr_unpack
  python3 -m http.server 8003 --bind 127.0.0.1 --directory /tmp/b/dist >/dev/null 2>&1 &
  sleep 1
  local cdp
  chr_cdp_cmd
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
