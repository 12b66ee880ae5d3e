// Test tooling for the end-to-end tests: a static server for dist/, Chromium via playwright-core, a tiny
// independent safetensors parser, a small labelled dataset made from the bundled sample (public/sample), and
// waits that follow visible progress.
import { createServer } from 'node:http';
import { readFile, mkdir, mkdtemp, copyFile, writeFile, readdir, rm } from 'node:fs/promises';
import { extname, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SAMPLE = join(ROOT, 'public/sample');
export const RESULTS = join(ROOT, 'test-results');

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css',
  '.json': 'application/json', '.svg': 'image/svg+xml', '.jpg': 'image/jpeg', '.png': 'image/png',
  '.txt': 'text/plain', '.md': 'text/markdown', '.safetensors': 'application/octet-stream', '.csv': 'text/csv' };

/** The Content-Security-Policy header that `trunk serve` sends (Trunk.toml's [serve.headers]): the one policy. */
export async function contentSecurityPolicy() {
  const toml = await readFile(join(ROOT, 'Trunk.toml'), 'utf8');
  const line = toml.match(/^"Content-Security-Policy" = "(.*)"$/m);
  if (!line) throw new Error('Trunk.toml has no Content-Security-Policy header');
  return line[1];
}

/** The build under test: dist/, or AJUSTE_DIST (another build, e.g. the previous commit's, to see a new test fail
 * there), said once on stderr so that a run against another build never passes for one of this tree. */
export function distUnderTest() {
  if (process.env.AJUSTE_DIST && process.env.CI) throw new Error('AJUSTE_DIST is set: CI tests this tree\'s dist/ only');
  const dist = resolve(process.env.AJUSTE_DIST ?? join(ROOT, 'dist'));
  if (process.env.AJUSTE_DIST && !distUnderTest.said) {
    distUnderTest.said = true;
    console.error(`NOTE: testing the build in ${dist} (AJUSTE_DIST), not this tree's dist/`);
  }
  return dist;
}

/**
 * Serves dist/ on 127.0.0.1 at a free port, as a production host would: the build's pre-compressed copies
 * (NAME.br, NAME.gz from scripts/compress.mjs) with Content-Encoding when the browser accepts them, unless
 * `compressed` is false; every response with the page's Content-Security-Policy header, unless `csp` is false.
 */
export async function serveDist({ compressed = true, csp = true } = {}) {
  const dist = distUnderTest();
  const policy = csp ? { 'content-security-policy': await contentSecurityPolicy() } : {};
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = resolve(dist, '.' + (path.endsWith('/') ? path + 'index.html' : path));
    if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
    const accepted = compressed ? (req.headers['accept-encoding'] ?? '') : '';
    const encodings = [['br', '.br'], ['gzip', '.gz']].filter(([name]) => accepted.includes(name));
    for (const [encoding, suffix] of [...encodings, [null, '']]) {
      try {
        const body = await readFile(file + suffix);
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
          'content-length': body.length, vary: 'accept-encoding', ...(encoding && { 'content-encoding': encoding }),
          ...policy });
        res.end(body);
        return;
      } catch { /* the next encoding, or 404 */ }
    }
    res.writeHead(404).end();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/** Chromium; `extraArgs` adds flags (e.g. a fake camera). */
export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
      '--disable-dev-shm-usage', ...extraArgs],
  });
}

/** A class-per-folder dataset: `perClass` photos of each class, plus the given bad files. */
export async function makeDataset(name, classes, perClass, badFiles = {}) {
  const root = join(tmpdir(), `ajuste-e2e-${process.pid}`, name);
  await rm(root, { recursive: true, force: true });
  for (const [cls, source] of Object.entries(classes)) {
    await mkdir(join(root, cls), { recursive: true });
    const files = (await readdir(source)).filter((f) => f.endsWith('.jpg')).sort().slice(0, perClass);
    for (const f of files) await copyFile(join(source, f), join(root, cls, f));
  }
  for (const [path, bytes] of Object.entries(badFiles)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), bytes);
  }
  return root;
}

/** Parses safetensors without any library: header length, JSON header, contiguous in-bounds offsets. */
export function parseSafetensors(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new Error('header past the end of the file');
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const dataLen = buf.length - 8 - n;
  const size = { F32: 4, F16: 2, I64: 8, U8: 1 };
  const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__')
    .map(([name, t]) => ({ name, ...t })).sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
  let expect = 0;
  for (const t of tensors) {
    const [a, b] = t.data_offsets;
    if (a !== expect) throw new Error(`${t.name}: offsets not contiguous`);
    const elems = t.shape.reduce((x, y) => x * y, 1);
    if (b - a !== elems * size[t.dtype]) throw new Error(`${t.name}: byte size does not match shape`);
    expect = b;
  }
  if (expect !== dataLen) throw new Error('data section size mismatch');
  const f32 = (name) => {
    const t = header[name]; const [a] = t.data_offsets; const count = t.shape.reduce((x, y) => x * y, 1);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = buf.readFloatLE(8 + n + a + 4 * i);
    return out;
  };
  return { header, metadata: header.__metadata__ ?? {}, tensors, f32 };
}

/**
 * Waits until `done` (evaluated in the page) is true. A busy machine may be slow, so there is no fixed time
 * limit on the work itself: the wait gives up only when `progress` (a string read from the page, e.g. a status
 * line) has not changed for `stallMs`, or after the generous `ceilingMs`. Its error says what it waited for
 * and the progress it last saw.
 */
export async function waitForProgress(page, what, { done, progress, arg, stallMs = 300_000, ceilingMs = 1_500_000 }) {
  const start = Date.now();
  let last = null, lastChange = start;
  for (;;) {
    if (await page.evaluate(done, arg)) return;
    const now = Date.now();
    const seen = await page.evaluate(progress, arg);
    if (seen !== last) { last = seen; lastChange = now; }
    if (now - lastChange > stallMs || now - start > ceilingMs) {
      const why = now - start > ceilingMs ? `${Math.round(ceilingMs / 1000)} s in all` : `no progress for ${Math.round(stallMs / 1000)} s`;
      throw new Error(`gave up waiting for ${what} (${why}); last seen: ${JSON.stringify(last)}`);
    }
    await new Promise((ok) => setTimeout(ok, 500));
  }
}

/** Sets the fine-tuning form to LoRA for `epochs` epochs with early stopping off (the options opened for it). */
export async function chooseLora(page, epochs) {
  const set = async (selector, value) => {
    await page.locator(selector).fill(value);
    await page.locator(selector).dispatchEvent('change');
  };
  await page.getByTestId('finetune-mode').selectOption('lora');
  await set('[data-testid=epochs]', String(epochs));
  await page.locator('details.options').evaluate((d) => { d.open = true; });
  await set('#opt-patience', '0');
}

/** Waits for the model to be ready, following the download and build status. */
export async function waitForModel(page, hasText = 'ready') {
  await waitForProgress(page, `the model status to say “${hasText}”`, {
    done: (t) => (document.querySelector('[data-testid=model-status]')?.textContent ?? '').includes(t),
    progress: () => document.querySelector('[data-testid=model-status]')?.textContent,
    arg: hasText,
  });
}

/** Waits for the dataset summary to count `images` images, following the reading progress. */
export async function waitForImages(page, images) {
  await waitForProgress(page, `${images} images in the dataset`, {
    done: (n) => document.querySelector('[data-testid=dataset-summary]')?.dataset.images === String(n),
    progress: () => [document.querySelector('[data-testid=dataset-summary]')?.textContent,
      document.querySelector('.progress span')?.textContent].join(' | '),
    arg: images,
  });
}

/** Waits for `training-status` to leave the busy states, following its status line; returns its data attributes. */
export async function waitForTraining(page) {
  await waitForProgress(page, 'the training to end (status done or error)', {
    done: () => {
      const s = document.querySelector('[data-testid=training-status]')?.dataset.state;
      return s === 'done' || s === 'error';
    },
    progress: () => {
      const s = document.querySelector('[data-testid=training-status]');
      return `${s?.dataset.state} epoch ${s?.dataset.epoch}: ${s?.textContent}`;
    },
  });
  return page.getByTestId('training-status').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
}

/** The page's console lines and uncaught errors, collected for assertion messages. */
export function pageLogs(page) {
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  return logs;
}

/** Clicks `testId`, checks the download's file name, saves it in test-results/ (as `saveAs`) and returns it. */
export async function download(page, testId, name, saveAs = name) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  if (dl.suggestedFilename() !== name) throw new Error(`downloaded ${dl.suggestedFilename()}, expected ${name}`);
  const path = join(RESULTS, saveAs);
  await dl.saveAs(path);
  return { bytes: await readFile(path), path };
}

/** A folder (in a new temp dir) of the first `perClass` images of each of the first `classes` classes of
 * bench/data/letters26's training split; returns the folder and its image count. */
export async function lettersSubset(classes, perClass) {
  const root = join(ROOT, 'bench/data/letters26');
  const split = JSON.parse(await readFile(join(root, 'letters26_split.json'), 'utf8'));
  const dir = await mkdtemp(join(tmpdir(), 'ajuste-letters-'));
  const taken = new Map();
  for (const path of split.train) {
    const cls = path.split('/')[0];
    if ((!taken.has(cls) && taken.size === classes) || (taken.get(cls) ?? 0) >= perClass) continue;
    taken.set(cls, (taken.get(cls) ?? 0) + 1);
    await mkdir(join(dir, cls), { recursive: true });
    await copyFile(join(root, path), join(dir, path));
  }
  return { dir, count: [...taken.values()].reduce((a, b) => a + b, 0) };
}
