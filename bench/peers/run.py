#!/usr/bin/env python3
"""Peers benchmark harness: onnxruntime-web and tfjs in headless Chromium (stdlib only).

What it does, in order:
  1. makes sure Chromium + chromedriver are there (apt-get install if not, when root)
  2. installs the pinned npm packages (package.json + package-lock.json of this folder) into a cache dir OUTSIDE
     this folder (default ~/.cache/ajuste-peers) with `npm ci`; skipped when the cache already matches the lock
  3. serves this folder on 127.0.0.1 (serve.py: COOP/COEP for crossOriginIsolated, application/wasm, text/javascript)
  4. runs each case in a fresh headless Chromium (fresh --user-data-dir) driven over WebDriver (wd.py)
  5. prints markdown tables (and writes a JSON file); stops every process it started, by PID

Examples:
  ./run.sh                                   # all cases, batches 1,16, 5 timed iterations
  ./run.sh --cases ort-wasm,tfjs-webgl --batches 1,4 --iters 3
  ./run.sh --repeat 2 --md table.md     # two whole runs, table of the medians
  ./run.sh --aggregate a.json b.json         # table of the medians of earlier runs (no browser)
"""
import argparse, datetime, hashlib, json, os, shutil, signal, statistics, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # keep __pycache__ out of this folder
import wd  # noqa: E402

CASES = {
    # name: (page, query, kind, description)
    'ort-wasm':          ('ort.html', {'ep': 'wasm'}, 'embed', "onnxruntime-web, executionProviders ['wasm'] (CPU, SIMD, threads)"),
    'ort-wasm-1t':       ('ort.html', {'ep': 'wasm', 'threads': 1}, 'embed', "onnxruntime-web ['wasm'], numThreads = 1"),
    'ort-webgpu':        ('ort.html', {'ep': 'webgpu', 'variant': 'jsep'}, 'embed', "onnxruntime-web default bundle, ['webgpu'] (JSEP kernels)"),
    'ort-webgpu-native': ('ort.html', {'ep': 'webgpu', 'variant': 'native'}, 'embed', "onnxruntime-web/webgpu bundle, ['webgpu'] (C++ WebGPU EP)"),
    'tfjs-webgl':        ('tfjs_embed.html', {'backend': 'webgl'}, 'embed', 'tfjs layers model, webgl backend'),
    'tfjs-webgpu':       ('tfjs_embed.html', {'backend': 'webgpu'}, 'embed', 'tfjs layers model, webgpu backend'),
    'head-cpu':          ('tfjs_head.html', {'backend': 'cpu'}, 'head', 'tfjs model.fit dense head, cpu backend'),
    'head-webgl':        ('tfjs_head.html', {'backend': 'webgl'}, 'head', 'tfjs model.fit dense head, webgl backend'),
    'head-webgpu':       ('tfjs_head.html', {'backend': 'webgpu'}, 'head', 'tfjs model.fit dense head, webgpu backend'),
}
# 'all' (the default) leaves out ort-webgpu-native: at batch 16 on SwiftShader one run of it takes 1.5-2.5 minutes.
GROUPS = {'all': [c for c in CASES if c != 'ort-webgpu-native'], 'everything': list(CASES),
          'embed': [c for c in CASES if CASES[c][2] == 'embed' and c != 'ort-webgpu-native'],
          'head': [c for c in CASES if CASES[c][2] == 'head'],
          'ort': ['ort-wasm', 'ort-wasm-1t', 'ort-webgpu', 'ort-webgpu-native'], 'tfjs': ['tfjs-webgl', 'tfjs-webgpu'],
          'webgpu': ['ort-webgpu', 'ort-webgpu-native', 'tfjs-webgpu', 'head-webgpu']}

BASE_FLAGS = ['--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--disable-quic']
GPU_FLAGS_FULL = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
                  '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist']
# Verified on Chromium 156 / Debian 12: only --enable-unsafe-webgpu is needed for a (SwiftShader) WebGPU adapter;
# --enable-unsafe-swiftshader only silences the "automatic fallback to software WebGL is deprecated" warning.
GPU_FLAGS_MINIMAL = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader']


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- setup
def ensure_chromium():
    binary = next((p for p in ('/usr/lib/chromium/chromium', '/usr/bin/chromium') if os.path.exists(p)), None)
    driver = shutil.which('chromedriver')
    if binary and driver:
        return binary, driver
    if os.geteuid() != 0:
        sys.exit('chromium/chromedriver missing: apt-get install -y chromium chromium-driver')
    log('[setup] installing chromium chromium-driver with apt-get')
    subprocess.run(['apt-get', 'update', '-qq'], check=False)
    subprocess.run(['apt-get', 'install', '-y', '-qq', 'chromium', 'chromium-driver'], check=True,
                   env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})
    return ensure_chromium()


def ensure_node_modules(node_dir):
    """npm ci of this folder's package.json + package-lock.json into node_dir (outside this folder), idempotent."""
    os.makedirs(node_dir, exist_ok=True)
    src_pkg, src_lock = os.path.join(HERE, 'package.json'), os.path.join(HERE, 'package-lock.json')
    npm = shutil.which('npm')
    if not npm:
        if os.geteuid() == 0:
            subprocess.run(['apt-get', 'install', '-y', '-qq', 'nodejs', 'npm'], check=True)
            npm = shutil.which('npm')
        if not npm:
            sys.exit('npm not found')
    shutil.copyfile(src_pkg, os.path.join(node_dir, 'package.json'))
    if not os.path.exists(src_lock):  # first time only: resolve, then keep the lock in this folder
        log('[setup] no package-lock.json yet: npm install --package-lock-only')
        subprocess.run([npm, 'install', '--package-lock-only', '--no-audit', '--no-fund', '--save-exact'],
                       cwd=node_dir, check=True)
        shutil.copyfile(os.path.join(node_dir, 'package-lock.json'), src_lock)
    shutil.copyfile(src_lock, os.path.join(node_dir, 'package-lock.json'))
    h = hashlib.sha256(open(src_pkg, 'rb').read() + open(src_lock, 'rb').read()).hexdigest()
    stamp = os.path.join(node_dir, 'node_modules', '.peers-stamp')
    need = ['onnxruntime-web/dist/ort.min.mjs', '@tensorflow/tfjs/dist/tf.min.js',
            '@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js']
    if (os.path.exists(stamp) and open(stamp).read().strip() == h
            and all(os.path.exists(os.path.join(node_dir, 'node_modules', p)) for p in need)):
        log(f'[setup] npm packages up to date in {node_dir}')
    else:
        log(f'[setup] npm ci into {node_dir} ...')
        t = time.time()
        # --ignore-scripts: the only install scripts (core-js, protobufjs) are banners/no-ops for browser use
        subprocess.run([npm, 'ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
                       cwd=node_dir, check=True)
        open(stamp, 'w').write(h + '\n')
        log(f'[setup] npm ci done in {time.time() - t:.0f}s')
    versions = {}
    for p in ('onnxruntime-web', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'):
        versions[p] = json.load(open(os.path.join(node_dir, 'node_modules', p, 'package.json')))['version']
    return versions


class Server:
    def __init__(self, node_modules, model_dir, coi=True):
        self.port = wd.free_port()
        cmd = [sys.executable, os.path.join(HERE, 'serve.py'), '--port', str(self.port), '--root', HERE,
               '--node-modules', node_modules, '--quiet']
        if model_dir and os.path.isdir(model_dir):
            cmd += ['--model-dir', model_dir]
        if not coi:
            cmd.append('--no-coi')
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        self.base = f'http://127.0.0.1:{self.port}'
        import urllib.request
        for _ in range(100):
            try:
                urllib.request.urlopen(self.base + '/probe.html', timeout=2).read(); return
            except Exception:
                time.sleep(0.1)
        self.stop(); sys.exit('static server did not start')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait(5)


class LoadSampler(threading.Thread):
    """Samples /proc/loadavg (1-min average) every `every` seconds while the harness runs."""
    def __init__(self, every=2.0):
        super().__init__(daemon=True); self.every = every; self.samples = []; self._ev = threading.Event()

    def run(self):
        while not self._ev.is_set():
            self.samples.append(float(open('/proc/loadavg').read().split()[0]))
            self._ev.wait(self.every)

    def stop(self):
        self._ev.set(); self.join(5)
        s = self.samples or [float('nan')]
        return {'min': min(s), 'mean': round(statistics.mean(s), 2), 'max': max(s), 'n': len(s)}


# ---------------------------------------------------------------- running
def cpu_snapshot():
    """(system busy CPU seconds from /proc/stat, this process's own CPU seconds, wall time)."""
    f = [int(x) for x in open('/proc/stat').readline().split()[1:]]
    busy = (sum(f[:8]) - f[3] - f[4]) / os.sysconf('SC_CLK_TCK')   # all but idle and iowait
    t = os.times()
    return busy, t.user + t.system, time.time()


def cpu_delta(s0, s1, browser_cpu_s=0.0):
    """Our CPU = Chromium + chromedriver (sampled from /proc by wd.CpuTracker) + this script; the static server's
    share is small and counted as 'others'."""
    busy, wall = s1[0] - s0[0], s1[2] - s0[2]
    ours = (s1[1] - s0[1]) + (browser_cpu_s or 0.0)
    n = os.cpu_count() or 1
    return {'ours_cpu_s': round(ours, 1), 'all_busy_cpu_s': round(busy, 1),
            'others_cpu_pct': round(100 * max(busy - ours, 0) / (wall * n), 1)}


def wait_idle(max_s, busy_pct=20):
    """Wait up to max_s seconds until the whole machine is < busy_pct % busy over 2 s (others' builds, tests)."""
    t0 = time.time()
    while True:
        s0 = cpu_snapshot(); time.sleep(2); s1 = cpu_snapshot()
        pct = 100 * (s1[0] - s0[0]) / ((s1[2] - s0[2]) * (os.cpu_count() or 1))
        if pct < busy_pct or time.time() - t0 >= max_s:
            return round(pct, 1), round(time.time() - t0, 1)


def run_case(browser, base, name, a):
    page, query, kind, _ = CASES[name]
    q = dict(query)
    if kind == 'embed':
        q.update(batches=a.batches, iters=a.iters, warmup=a.warmup, budget=a.budget, miniters=a.min_iters)
    else:
        q.update(epochs=a.epochs, data=a.head_data)
    url = f'{base}/{page}?' + '&'.join(f'{k}={v}' for k, v in q.items())
    idle = wait_idle(a.wait_idle) if a.wait_idle > 0 else None
    la0 = open('/proc/loadavg').read().split()[0]
    c0 = cpu_snapshot()
    res, console, info = browser.run_page(url, timeout=a.case_timeout)
    c1 = cpu_snapshot()
    res = res or {}
    res.update(name=name, kind=kind, url=url, wall_s=round(c1[2] - c0[2], 1), loadavg_start=float(la0),
               loadavg_end=float(open('/proc/loadavg').read().split()[0]), browser=info, cpu=cpu_delta(c0, c1, info.get('cpu_s')),
               idle_wait=idle)
    if info.get('title') != 'finished':
        res['ok'] = False
        res['error'] = (res.get('error') or '') + f" TIMEOUT/NO-FINISH after {a.case_timeout}s (title={info.get('title')!r}, {info.get('error', '')})"
    res['console_tail'] = [c for c in console if 'favicon' not in c][-15:]
    return res


def one_harness_run(a, binary, driver, base, flags):
    browser = wd.Browser(flags, binary=binary, driver=driver)
    probe, _, pinfo = browser.run_page(base + '/probe.html', timeout=60)
    ad = (probe or {}).get('webgpuAdapter') or {}
    log(f"[probe] chromium {pinfo.get('browserVersion')}  webgpu={ad.get('vendor')}/{ad.get('architecture')} "
        f"fallback={ad.get('isFallbackAdapter')}  "
        f"webgl2={(probe or {}).get('webgl2')}  coi={(probe or {}).get('crossOriginIsolated')}")
    results = []
    for name in a.case_list:
        log(f'[case] {name} ...')
        r = run_case(browser, base, name, a)
        results.append(r)
        cpu = r['cpu']
        tail = (f"  [{r['wall_s']}s, our CPU {cpu['ours_cpu_s']}s, others {cpu['others_cpu_pct']}% of the machine, "
                f"load {r['loadavg_start']}->{r['loadavg_end']}" + (f", waited {r['idle_wait'][1]}s for idle" if r.get('idle_wait') else '') + ']')
        if r.get('ok'):
            if r['kind'] == 'embed':
                log('   ' + '; '.join(f"b{x['batch']}: {x['median_ms']} ms ({x['ips']} img/s, {len(x['times_ms'])} runs)"
                                      for x in r.get('runs', [])) + tail)
            else:
                log(f"   fit {r.get('fit_s')} s, val_acc {r.get('val_acc')}" + tail)
        else:
            log(f"   FAILED: {str(r.get('error'))[:600]}" + tail)
            for c in r.get('console_tail', [])[-5:]:
                log('     console: ' + c[:300])
    return {'probe': probe, 'browserVersion': pinfo.get('browserVersion'), 'cases': results}


# ---------------------------------------------------------------- reporting
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def fmt(x, d=1):
    return '-' if x is None else f'{x:.{d}f}'


def tables(runs):
    """Markdown tables; with several runs every number is the median over the runs."""
    n = len(runs)
    by = {}
    for r in runs:
        for c in r['cases']:
            by.setdefault(c['name'], []).append(c)
    out = []
    hdr_note = f' (median of {n} whole runs)' if n > 1 else ''

    def load_col(cs):
        return ', '.join(f"{c.get('loadavg_start', float('nan')):.1f}->{c.get('loadavg_end', float('nan')):.1f}"
                         + (f" ({c['cpu']['others_cpu_pct']:.0f}%)" if 'cpu' in c else '') for c in cs)

    # ---- embedding
    emb, ref = {}, {}
    embed_names = [k for k in CASES if CASES[k][2] == 'embed' and k in by]
    for name in embed_names:
        cs = by[name]
        for b in sorted({x['batch'] for c in cs for x in c.get('runs', [])}):
            rr = [x for c in cs for x in c.get('runs', []) if x['batch'] == b]
            ms = med([x['median_ms'] for x in rr])
            emb[(name, b)] = dict(ms=ms, ips=(b / (ms / 1000) if ms else None), min=med([x['min_ms'] for x in rr]),
                                  cold=med([x['cold_ms'] for x in rr]), iters=[len(x['times_ms']) for x in rr],
                                  req=rr[0].get('iters_requested', len(rr[0]['times_ms'])),
                                  load=med([c.get('load_ms', c.get('build_ms')) for c in cs]))
            if name == 'ort-wasm':
                ref[b] = emb[(name, b)]['ips']
    if embed_names:
        out.append(f'### Embedding: EfficientNet-Lite0 features, batch -> [N,1280] on the host{hdr_note}\n')
        out.append('| case | batch | median ms/batch | img/s | x ort-wasm | min ms | first (cold) run ms | load/build ms | timed runs | load avg start->end (others CPU) |')
        out.append('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
        for name in embed_names:
            cs = by[name]
            bad = [c for c in cs if not c.get('ok')]
            bs = sorted(b for (nm, b) in emb if nm == name)
            if not bs:
                err = (cs[0].get('error') or 'no result').strip().splitlines()[0][:160].replace('|', '/')
                out.append(f'| {name} | - | FAILED: {err} | | | | | | | {load_col(cs)} |')
                continue
            for b in bs:
                e = emb[(name, b)]
                ratio = (e['ips'] / ref[b]) if ref.get(b) and e['ips'] else None
                flag = f' ({len(bad)} run(s) incomplete)' if bad else ''
                its = '+'.join(str(i) for i in e['iters']) + (f" (of {e['req']})" if min(e['iters']) < e['req'] else '')
                out.append(f"| {name}{flag} | {b} | {fmt(e['ms'])} | {fmt(e['ips'], 2)} | {fmt(ratio, 3)} | {fmt(e['min'])} | "
                           f"{fmt(e['cold'])} | {fmt(e['load'], 0)} | {its} | {load_col(cs)} |")
        out.append('')
    # ---- head training
    head_names = [k for k in CASES if CASES[k][2] == 'head' and k in by]
    if head_names:
        out.append(f'### Head training: dense 1280->5 softmax, model.fit, Adam 1e-3, batch 32{hdr_note}\n')
        out.append('| case | data (train/val) | epochs | fit wall s | x head-cpu | first epoch ms | median epoch ms | final val acc | val loss first -> last | load avg start->end (others CPU) |')
        out.append('|---|---|---:|---:|---:|---:|---:|---:|---|---|')
        cpu = med([c['fit_s'] for c in by.get('head-cpu', []) if c.get('ok')])
        for name in head_names:
            cs = [c for c in by[name] if c.get('ok')]
            if not cs:
                err = (by[name][0].get('error') or 'no result').strip().splitlines()[0][:160].replace('|', '/')
                out.append(f'| {name} | FAILED: {err} | | | | | | | | {load_col(by[name])} |'); continue
            accs = [c['val_acc'] for c in cs]
            acc = ' / '.join(f'{x:.3f}' for x in accs) if len(set(accs)) > 1 else f'{accs[0]:.3f}'
            fit = med([c['fit_s'] for c in cs])
            c0 = cs[0]
            out.append(f"| {name} | {c0.get('data')} ({c0.get('n_train')}/{c0.get('n_val')}) | {c0.get('epochs')} | "
                       f"{fmt(fit, 2)} | {fmt(fit / cpu if cpu else None, 2)} | {fmt(med([c['epoch1_ms'] for c in cs]), 0)} | "
                       f"{fmt(med([c['epoch_median_ms'] for c in cs]), 1)} | {acc} | "
                       f"{fmt(med([c['val_loss_first'] for c in cs]), 3)} -> {fmt(med([c['val_loss_last'] for c in cs]), 3)} | "
                       f"{load_col(by[name])} |")
        out.append('')
    # ---- environment
    r0 = runs[0]
    p = r0.get('probe') or {}
    ad = p.get('webgpuAdapter') or {}
    out.append(f"Chromium {r0.get('browserVersion')} headless; WebGPU adapter {ad.get('vendor')}/{ad.get('architecture')} "
               f"(isFallbackAdapter={ad.get('isFallbackAdapter')}); WebGL2 {p.get('webgl2')}; "
               f"crossOriginIsolated={p.get('crossOriginIsolated')}; hardwareConcurrency={p.get('hardwareConcurrency')}. "
               f"Packages: {', '.join(f'{k} {v}' for k, v in (r0.get('versions') or {}).items())}. "
               f"tfjs embedding uses RANDOM weights (speed only).")
    out.append('Load average (1 min, sampled every 2 s) per whole run: ' +
               '; '.join(f"run {i + 1}: min {x['loadavg'].get('min')} / mean {x['loadavg'].get('mean')} / max {x['loadavg'].get('max')} "
                         f"({x.get('wall_s')} s)" for i, x in enumerate(runs)) + f' on {os.cpu_count()} cores.')
    for r in runs:
        for c in r['cases']:
            if not c.get('ok'):
                e = (c.get('error') or '?').strip().splitlines()[0][:300]
                out.append(f"- FAILED {c['name']}: {e}")
    return '\n'.join(out)


def print_report(runs, md_path=None):
    """Per-run tables (when there are several runs), then the table of the medians; --md gets the latter."""
    md = tables(runs)
    if len(runs) > 1:
        for i, r in enumerate(runs):
            print(f'<details><summary>run {i + 1}</summary>\n\n{tables([r])}\n\n</details>\n')
    print(md)
    if md_path:
        open(md_path, 'w').write(md + '\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cases', default='all',
                    help='comma list of cases and/or groups (all, embed, head, ort, tfjs). Cases: ' + ', '.join(CASES))
    ap.add_argument('--batches', default='1,16', help='batch sizes for the embedding cases (default 1,16)')
    ap.add_argument('--iters', type=int, default=5, help='timed iterations per batch size (default 5)')
    ap.add_argument('--warmup', type=int, default=2,
                    help='untimed runs per batch size before timing, the cold first run included (>=1; default 2); '
                         'extra warm-ups are skipped when the cold run took longer than budget/4')
    ap.add_argument('--budget', type=float, default=45,
                    help='seconds of timed runs per case and batch size: timing stops early once this is spent and '
                         '--min-iters runs were done (default 45; SwiftShader WebGPU at batch 16 takes ~1 min a run)')
    ap.add_argument('--min-iters', type=int, default=1, help='timed runs done even past --budget (default 1)')
    ap.add_argument('--epochs', type=int, default=50, help='head training epochs (default 50)')
    ap.add_argument('--head-data', choices=['real', 'random'], default='real',
                    help='real: tests/fixtures/reference_embeddings.safetensors of the repository (falls back to random if absent)')
    ap.add_argument('--wait-idle', type=float, default=0,
                    help='before each case wait up to this many seconds for the machine to be < 20%% busy (default 0: off)')
    ap.add_argument('--repeat', type=int, default=1, help='whole harness runs; tables show the median (default 1)')
    ap.add_argument('--case-timeout', type=float, default=300, help='seconds per case before giving up (default 300)')
    ap.add_argument('--node-dir', default=os.environ.get('PEERS_NODE_DIR', os.path.expanduser('~/.cache/ajuste-peers')),
                    help='npm cache dir outside this folder (default ~/.cache/ajuste-peers or $PEERS_NODE_DIR)')
    ap.add_argument('--model-dir', default=os.path.normpath(os.path.join(HERE, '..', '..', 'tests', 'fixtures')),
                    help='served at /model/ (default: the repository\'s tests/fixtures)')
    ap.add_argument('--flags', choices=['full', 'minimal'], default='full', help='Chromium GPU flag set (default full)')
    ap.add_argument('--no-coi', action='store_true', help='serve without COOP/COEP (ORT wasm then runs 1 thread)')
    ap.add_argument('--json', default=None, help='write all results here (default ~/.cache/ajuste-peers/results/run-<time>.json)')
    ap.add_argument('--md', default=None, help='also write the markdown tables to this file')
    ap.add_argument('--aggregate', nargs='+', default=None, help='only print the tables for these earlier JSON files')
    a = ap.parse_args()

    if a.aggregate:
        runs = []
        for f in a.aggregate:
            d = json.load(open(f)); runs += d['runs'] if 'runs' in d else [d]
        print_report(runs, a.md)
        return

    names = []
    for tok in a.cases.split(','):
        tok = tok.strip()
        if tok in GROUPS: names += GROUPS[tok]
        elif tok in CASES: names.append(tok)
        elif tok: sys.exit(f'unknown case {tok!r}; known: {", ".join(CASES)}; groups: {", ".join(GROUPS)}')
    a.case_list = list(dict.fromkeys(names))
    a.warmup = max(1, a.warmup)
    flags = BASE_FLAGS + (GPU_FLAGS_FULL if a.flags == 'full' else GPU_FLAGS_MINIMAL)

    def on_term(signum, frame):
        raise SystemExit(f'signal {signum}')
    signal.signal(signal.SIGTERM, on_term)

    t_all = time.time()
    binary, driver = ensure_chromium()
    versions = ensure_node_modules(a.node_dir)
    server = Server(os.path.join(a.node_dir, 'node_modules'), a.model_dir, coi=not a.no_coi)
    runs = []
    try:
        for i in range(a.repeat):
            log(f'=== harness run {i + 1}/{a.repeat}: cases {",".join(a.case_list)}; batches {a.batches}; '
                f'iters {a.iters} (budget {a.budget}s); warmup {a.warmup}; epochs {a.epochs}')
            sampler = LoadSampler(); sampler.start()
            t = time.time()
            try:
                r = one_harness_run(a, binary, driver, server.base, flags)
            finally:
                la = sampler.stop()
            r.update(versions=versions, loadavg=la, wall_s=round(time.time() - t, 1), flags=flags,
                     started=datetime.datetime.now().isoformat(timespec='seconds'),
                     args={k: v for k, v in vars(a).items() if k not in ('aggregate',)})
            runs.append(r)
            log(f'=== run {i + 1} took {r["wall_s"]} s; loadavg {la}')
    finally:
        server.stop()
    out = a.json or os.path.expanduser("~/.cache/ajuste-peers/results/")+f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    json.dump({'runs': runs}, open(out, 'w'), indent=1)
    print_report(runs, a.md)
    log(f'[done] {time.time() - t_all:.0f}s total; JSON: {out}')


if __name__ == '__main__':
    main()
