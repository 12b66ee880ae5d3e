#!/usr/bin/env bash
# Issue 31, on the device machine: the default Auto on 2,000 JPEGs in 20 classes (the first 100 per class of
# bench/data/many, from bench/make_many.mjs, as a .zip picked in the page), from the drop through Train to done, on
# the CPU path's 16 threads (`?backend=cpu&threads=16`) and on the GPU in Chromium (WebGPU, as browser_gpu.sh
# enables it), to show the deep run's time budget adapts. The local twin is bench/app_scale.mjs (10,000 images).
# Packing and unpacking the browser: bench/device/chromium_pack.sh (shared with app_threads.sh).
#   bench/device/app_scale.sh pack [per-class=100]   # here: the shell in thirds in .chr/p1..p3; its libraries (GL and
#                                                    # Vulkan too), dist/ and the data in p4 (`pack_rest`: p4 alone)
#   carry [.chr/p1]          bash bench/device/app_scale.sh stage .chr/p1
#   carry [.chr/p2]          bash bench/device/app_scale.sh stage .chr/p2
#   carry [.chr/p3]          bash bench/device/app_scale.sh stage .chr/p3
#   carry [.gl, .chr/p4]     bash bench/device/app_scale.sh stage .chr/p4 && bash bench/device/app_scale.sh run cpu
#   carry [.gl]              bash bench/device/app_scale.sh run webgpu
# A call runs at most 10 minutes: one backend per call (`run cpu,webgpu` does both if they fit). BUDGET=<minutes>
# sets the deep run's budget (#opt-budget) instead of the default; TIMEOUT (s, default 560) bounds each run;
# THREADS (default 16) the CPU path's threads. WebGPU needs the Vulkan loader's debs in .gl (the device README).
# `run` prints one markdown row per backend and appends them to $OUT/scale.md; files under /tmp outlive a call
# while the machine stays warm.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHR_WORK=/tmp/scale-pack
source bench/device/chromium_pack.sh

pack() {
  chr_pack_shell gl
  pack_rest "${1:-100}"
}

# p4 alone (the app changed): the libraries packed by `pack`, today's dist/ and the data.
pack_rest() {
  local per=${1:-100} work=$CHR_WORK
  [ -d bench/data/many ] || { echo "no bench/data/many: run node bench/make_many.mjs first" >&2; return 1; }
  rm -rf "$work/data" && mkdir -p "$work/data"
  python3 - "$work/data" "$per" <<'PY'
import hashlib, os, sys, zipfile
root, out, per = 'bench/data/many', sys.argv[1], int(sys.argv[2])
n, classes, seen = 0, sorted(os.listdir(root)), set()
with zipfile.ZipFile(f'{out}/many.zip', 'w', zipfile.ZIP_STORED) as z:  # JPEGs: nothing to gain from deflate
    for cls in classes:
        for f in sorted(os.listdir(f'{root}/{cls}'))[:per]:
            # The page keeps one copy of identical images; the generator repeats a few.
            digest = hashlib.sha256(open(f'{root}/{cls}/{f}', 'rb').read()).digest()
            if digest not in seen:
                seen.add(digest)
                z.write(f'{root}/{cls}/{f}', f'{cls}/{f}')
                n += 1
open(f'{out}/count', 'w').write(str(n))
print(n, 'images in', len(classes), 'classes')
PY
  chr_pack_rest
}

stage() { chr_stage "$1"; }

# The renderer processes' resident memory every 250 ms ("ms largest_kB all_kB" lines), until killed.
sampler() {
  python3 - "$1" <<'PY'
import os, sys, time
out = open(sys.argv[1], 'w')
while True:
    one = total = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f'/proc/{pid}/cmdline', 'rb').read()
            if b'chromium-headless-shell' not in cmd or b'--type=renderer' not in cmd:
                continue
            kb = next(int(l.split()[1]) for l in open(f'/proc/{pid}/status') if l.startswith('VmRSS:'))
        except (OSError, StopIteration):
            continue
        one, total = max(one, kb), total + kb
    out.write(f'{time.time() * 1000:.0f} {one} {total}\n')
    out.flush()
    time.sleep(0.25)
PY
}

run() {
  local backends=${1:-cpu} out=${OUT:-/tmp/out}
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
  mkdir -p "$out"
  chr_unpack
  local n
  n=$(cat /tmp/b/data/count)
  python3 -m http.server 8004 --bind 127.0.0.1 --directory /tmp/b/dist >/dev/null 2>&1 &
  sleep 1
  # Before the drop (once the model is ready): the budget, if asked for; the drop's time.
  local drop="(() => { const w = window; if (!(document.querySelector('[data-testid=model-status]')?.textContent || '').includes('ready')) return false;
    const b = document.querySelector('#opt-budget'); w.__budget = b ? 'set' : 'absent';
    if ('${BUDGET:-}' && b) { document.querySelector('details.options').open = true; b.value = '${BUDGET:-}';
      b.dispatchEvent(new Event('change', {bubbles: true})); }
    w.__tDrop = Date.now(); return true; })()"
  # Train once all images are in and saved (3 s after the storage line shows usage); from then on the status
  # line's phase changes (features, head run, deep run, end) with their times.
  local steps="(() => { const q = (id) => document.querySelector('[data-testid=' + id + ']'); const w = window;
    const s = q('training-status');
    if (w.__c) return s.dataset.state === 'done' || s.dataset.state === 'error';
    if (q('dataset-summary')?.dataset.images !== '$n' || !(Number(q('storage-usage')?.dataset.usage) > 0) || q('train-button').disabled) return false;
    w.__saved = w.__saved || Date.now(); if (Date.now() - w.__saved < 3000) return false;
    w.__seen = []; let last = '';
    const note = () => { const st = s.dataset.state;
      const phase = st === 'training' ? (/^\s*Training the new head/.test(s.textContent) ? 'head' : 'deep') : st;
      if (phase !== last) { w.__seen.push([Date.now(), phase, s.textContent]); last = phase; } };
    new MutationObserver(note).observe(s, {childList: true, characterData: true, subtree: true, attributes: true});
    w.__t0 = Date.now(); q('train-button').click(); w.__c = 1; return false; })()"
  local result="(() => { const q = (id) => document.querySelector('[data-testid=' + id + ']'); const d = q('deep-summary');
    return {cores: navigator.hardwareConcurrency, backend: q('backend')?.dataset.backend, budget: window.__budget,
      tDrop: window.__tDrop, t0: window.__t0, seen: window.__seen, status: {...q('training-status').dataset},
      text: q('training-status').textContent, deep: d && {...d.dataset, text: d.textContent.trim()},
      runs: [...document.querySelectorAll('[data-testid=run-charts]')].map((e) => e.dataset.run + ' ' + e.dataset.epochs),
      timings: q('timings')?.textContent}; })()"
  local gpu
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
  { echo "# Auto on $n images: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), ${gpu:-no GPU}, budget ${BUDGET:-default}, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo '| backend | images | drop → done s | Train → done s | head phase s (features) | deep phase s | deep summary | budget s / steps / best step / s / reason | within budget + head | kept (runs) | val accuracy | renderer peak MB: ingest / head / deep; largest; all |'
    echo '|---|---:|---:|---:|---:|---:|---|---|---|---|---:|---|'; } | tee -a "$out/scale.md"
  local b query extra cdp spid
  for b in ${backends//,/ }; do
    extra=()
    rm -f "/tmp/b/s-$b.json"
    case $b in
      cpu) query="backend=cpu&threads=${THREADS:-16}" ;;
      webgpu)
        if ! chr_gpu; then echo "| webgpu | (skipped: no GPU set-up, see above) |" | tee -a "$out/scale.md"; continue; fi
        query=backend=webgpu extra=("${CHR_GPU_FLAGS[@]}") ;;
      *) echo "unknown backend $b (cpu or webgpu)" >&2; continue ;;
    esac
    chr_cdp_cmd ${extra[@]+"${extra[@]}"}
    sampler "/tmp/b/rss-$b.txt" &
    spid=$!
    "${cdp[@]}" "http://127.0.0.1:8004/?$query" --timeout "${TIMEOUT:-560}" --files '[data-testid=zip-input]' \
      /tmp/b/data/many.zip --files-when "$drop" --until "$steps" --result "$result" | tail -1 > "/tmp/b/s-$b.json" || true
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    python3 - "$b" "$n" "/tmp/b/s-$b.json" "/tmp/b/rss-$b.txt" <<'PY' | tee -a "$out/scale.md"
import json, sys
b, n, path, rss = sys.argv[1:]
try:
    r = json.loads(open(path).read())
except Exception as e:
    print(f'| {b} | {n} | (no result: {e}) |'); sys.exit()
seen, st, deep = r.get('seen') or [], r['status'], r.get('deep')
def first(phase):
    return next((t for t, p, _ in seen if p == phase), None)
t0, drop = r.get('t0'), r.get('tDrop')
end = first('done') or first('error') or (seen[-1][0] if seen else t0)
deep_at = first('deep') or end
embedded = next((t for t, p, _ in seen if p != 'embedding'), end)
sec = lambda a, z: f'{(z - a) / 1000:.1f}' if a and z else '?'
samples = [tuple(map(int, l.split())) for l in open(rss) if len(l.split()) == 3]
def peak(a, z, col=1):
    v = [s[col] for s in samples if (a is None or s[0] >= a) and (z is None or s[0] <= z)]
    return f'{max(v) / 1024:.0f}' if v else '?'
within = '?'
if deep and deep.get('budgetSeconds') and t0:
    spare = float(deep['budgetSeconds']) * 1000 + (deep_at - t0) - (end - t0)
    within = f'yes ({spare / 1000:.0f} s to spare)' if spare >= 0 else f'**no** (over by {-spare / 1000:.0f} s)'
cell = lambda v: ' '.join(str(v).split()).replace('|', '\\|')  # one line, no column breaks
summary = cell(deep['text']) if deep else '(no deep summary on this build)'
attrs = (f"{deep.get('budgetSeconds')} / {deep.get('steps')} / {deep.get('bestStep')} / {deep.get('seconds')} / "
         f"{deep.get('reason')}") if deep else '–'
state = '' if st.get('state') == 'done' else f" **{st.get('state')}**: {cell(r.get('text', ''))[:160]}"
budget = ' (#opt-budget absent: default)' if r.get('budget') == 'absent' else ''
print(f"| {r.get('backend') or b} ({r.get('cores')} cores){state}{budget} | {n} | {sec(drop, end)} | {sec(t0, end)} | "
      f"{sec(t0, deep_at)} ({sec(t0, embedded)}) | {sec(first('deep'), end) if first('deep') else 'none'} | {summary} | "
      f"{attrs} | {within} | {st.get('mode')} ({', '.join(r.get('runs') or [])}) | "
      f"{float(st.get('valAccuracy') or 'nan'):.3f} | {peak(drop, t0)} / {peak(t0, deep_at)} / {peak(deep_at, end)}; "
      f"{peak(None, None)}; {peak(None, None, 2)} |")
PY
  done
  for b in ${backends//,/ }; do
    echo "The page's timings line ($b): $(python3 -c 'import json,sys; print((json.load(open(sys.argv[1])).get("timings") or "").strip())' "/tmp/b/s-$b.json" 2>/dev/null || echo '?')"
  done | tee -a "$out/scale.md"
}

"$@"
