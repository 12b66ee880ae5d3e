// The cross-browser suite: the same few journeys in every engine (one *.test.mjs per engine calls `suite`), over
// W3C WebDriver (webdriver.mjs), against the built app served as in tests/e2e. No `?backend=`: the page picks the
// backend itself, and here every engine has no usable WebGPU adapter, so each must take the CPU path and say why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { serveDist, parseSafetensors, waitForProgress, waitForModel, waitForImages, SAMPLE, RESULTS } from '../e2e/helpers.mjs';
import { startSession } from './webdriver.mjs';

const CLASSES = ['animal', 'monument', 'tool'];
// Why WebGPU is not used, per engine: Chromium gets SwiftShader (webdriver.json's flags), a software fallback the
// page passes over; Firefox ESR on Linux has no navigator.gpu, or one without an adapter (seen both ways);
// WebKitGTK has no navigator.gpu.
const NO_ADAPTER = /no WebGPU adapter: (this browser has no WebGPU \(navigator\.gpu is missing\)|requestAdapter\(\) returned no adapter)/;
const WHY_CPU = { chromium: /runs on the processor, not on a graphics card, and is far slower than the CPU path/, firefox: NO_ADAPTER, webkit: NO_ADAPTER };

/** Console errors, warnings and uncaught errors of the page since the last navigation (WebDriver classic has
 * no console log), to put in assertion messages. */
function collectLogs() {
  if (window.__logs) return;
  window.__logs = [];
  for (const level of ['error', 'warn']) {
    const original = console[level];
    console[level] = (...args) => { window.__logs.push(`${level}: ${args.join(' ')}`); original.apply(console, args); };
  }
  addEventListener('error', (e) => window.__logs.push(`pageerror: ${e.message}`));
  addEventListener('unhandledrejection', (e) => window.__logs.push(`unhandledrejection: ${e.reason}`));
}

/** Sets a <select> or <input> the way a person would (the page listens to change). */
function setValue([css, value]) {
  const el = document.querySelector(css);
  el.value = value;
  el.dispatchEvent(new Event('input', { bubbles: true }));
  el.dispatchEvent(new Event('change', { bubbles: true }));
  return el.value;
}

/**
 * WebKitGTK's WebDriver session keeps its data in memory only, and drops a Cache Storage cache once no document
 * holds it: a reload (the old document is not kept for back/forward) loses every entry, which a person's
 * Safari, storing on disk, never does (checked with a plain page: put, reload, keys() is empty). A second tab
 * of the origin that opens every cache the page creates keeps them, so the reload test tests the app.
 */
async function keepCachesAlive(wd, origin) {
  const main = await wd.cmd('GET', '/window');
  const { handle } = await wd.cmd('POST', '/window/new', { type: 'tab' });
  await wd.cmd('POST', '/window', { handle });
  await wd.navigate(`${origin}xbrowser-cache-keeper`);   // a 404: any document of the origin will do
  await wd.evaluate(() => {
    const held = new Map();
    setInterval(async () => {
      for (const name of await caches.keys()) if (!held.has(name)) held.set(name, await caches.open(name));
    }, 50);
  });
  await wd.cmd('POST', '/window', { handle: main });
}

const status = () => {
  const s = document.querySelector('[data-testid=training-status]');
  return s && { ...s.dataset, text: s.textContent };
};

export function suite(engine) {
  let server, wd;
  const logs = async () => (await wd.evaluate(() => window.__logs ?? []).catch((e) => [String(e)])).join('\n');
  // After each navigation: the page's hooks are gone with the old document.
  const instrument = async () => { await wd.evaluate(collectLogs); await wd.captureDownloads(); };

  async function train(mode) {
    assert.equal(await wd.evaluate(setValue, ['[data-testid=finetune-mode]', mode]), mode);
    await wd.click('[data-testid=train-button]');
    // Until the new run has started (the previous run's "done" must not count), then until it ends.
    await waitForProgress(wd, 'the training to start', {
      done: () => document.querySelector('[data-testid=training-status]')?.dataset.state !== 'done',
      progress: () => document.querySelector('[data-testid=training-status]')?.textContent, stallMs: 30_000,
    }).catch(() => { /* a very fast run may be done before the first poll: the checks below tell */ });
    await waitForProgress(wd, `the ${mode} training to end (done or error)`, {
      done: () => ['done', 'error'].includes(document.querySelector('[data-testid=training-status]')?.dataset.state),
      progress: () => {
        const s = document.querySelector('[data-testid=training-status]');
        return `${s?.dataset.state} epoch ${s?.dataset.epoch}: ${s?.textContent}`;
      },
    });
    const s = await wd.evaluate(status);
    assert.equal(s.state, 'done', `${engine}: ${s.text}\n${await logs()}`);
    return s;
  }

  /** The sample loaded and a model trained, as the tests before leave it; done again (head only) when a reload
   * lost them, so that one engine's failure there does not hide the next tests' results. */
  async function ensureTrained() {
    const now = await wd.evaluate(() => ({
      images: document.querySelector('[data-testid=dataset-summary]')?.dataset.images,
      state: document.querySelector('[data-testid=training-status]')?.dataset.state,
      model: !!document.querySelector('[data-testid=try-input]'),
    }));
    if (now.images !== '36') {
      await wd.click('[data-testid=sample-button]');
      await waitForImages(wd, 36);
    }
    if (now.images !== '36' || now.state !== 'done' || !now.model) await train('head');
  }

  before(async () => {
    await mkdir(RESULTS, { recursive: true });
    server = await serveDist();
    wd = await startSession(engine);
    if (engine === 'webkit') await keepCachesAlive(wd, server.url);
    await wd.navigate(server.url);
    await instrument();
    await waitForModel(wd);
  });
  after(async () => { await wd?.close(); server?.close(); });

  test(`${engine}: the page takes the CPU path and says why WebGPU is not used`, async () => {
    const backend = await wd.evaluate(() => {
      const b = document.querySelector('[data-testid=backend]');
      return { kind: b.dataset.backend, why: b.querySelector('.why').textContent,
        selected: document.querySelector('#backend-select').value };
    });
    assert.equal(await wd.evaluate(() => document.querySelector('[data-testid=finetune-mode]').value), 'auto',
      'Auto is the default mode');
    assert.equal(backend.kind, 'cpu', JSON.stringify(backend));
    assert.equal(backend.selected, 'cpu');
    assert.match(backend.why, WHY_CPU[engine]);
  });

  test(`${engine}: the sample trains (head only); model.safetensors downloads and parses`, async () => {
    await wd.click('[data-testid=sample-button]');
    await waitForImages(wd, 36);
    const s = await train('head');
    assert.ok(Number(s.epoch) >= 1 && Number.isFinite(Number(s.valLoss)), JSON.stringify(s));
    assert.ok(Number(await wd.evaluate(() => document.querySelectorAll('[data-testid=charts] polyline').length)) >= 4,
      'both charts have two lines');
    const model = parseSafetensors(await wd.download('[data-testid=export-button]', 'model.safetensors'));
    assert.deepEqual(model.header['classifier.weight'].shape, [3, 1280]);
    assert.deepEqual(model.header['stem.conv.weight'].shape, [32, 3, 3, 3]);
    assert.equal(model.header['blocks.15.project.conv.weight'].dtype, 'F32');
    assert.deepEqual(JSON.parse(model.metadata.labels), CLASSES);
    assert.ok(model.f32('classifier.weight').every(Number.isFinite));
    // The top of the page (header, backend and why, dataset), then the charts and results.
    await wd.evaluate(() => window.scrollTo(0, 0));
    await writeFile(join(RESULTS, `xbrowser-${engine}.png`), await wd.screenshot());
    await wd.evaluate(() => document.querySelector('[data-testid=training-status]').scrollIntoView());
    await writeFile(join(RESULTS, `xbrowser-${engine}-trained.png`), await wd.screenshot());
  });

  let kept;
  test(`${engine}: Auto (the default mode) on the sample reaches done`, async () => {
    // The default options, whole sample: on 2 cores Train → done took 49 s (Chromium), 83 s (Firefox) and 98 s
    // (WebKit) from a fresh page, the LoRA run stopping early after 21 of its 50 epochs.
    assert.equal(await wd.evaluate(() => document.querySelector('[data-testid=epochs]').value), '50');
    const s = await train('auto');
    assert.ok(['head', 'lora'].includes(s.mode), `kept ${s.mode}`);
    const runs = await wd.evaluate(() => [...document.querySelectorAll('[data-testid=run-charts]')].map((e) => e.dataset.run));
    assert.deepEqual(runs, ['head', 'lora'], 'both runs charted');
    assert.match(await wd.evaluate(() => document.querySelector('[data-testid=auto-explanation]').textContent),
      /was kept: .*validation loss/);
    kept = { status: s, head: await wd.download('[data-testid=export-head]', 'head.safetensors') };
  });

  test(`${engine}: after a reload the images and the trained model come back`, async (t) => {
    assert.ok(kept, 'the Auto test trained a model');
    // The storage line says how many images a reload brings back (once the index naming them is saved); an
    // engine without navigator.storage (WebKitGTK) shows no line, and the reload below tells.
    await waitForProgress(wd, 'the storage line to count the 36 images a reload brings back', {
      done: () => {
        const d = document.querySelector('[data-testid=storage-usage]')?.dataset;
        return !d?.usage || d.images === '36';
      },
      progress: () => document.querySelector('[data-testid=storage-usage]')?.outerHTML, stallMs: 60_000,
    }).catch(async (e) => { throw new Error(`${engine}: the index naming the images is never saved, so a reload `
      + `would lose them: ${e.message}\n${await logs()}`); });
    // A browser that still drops Cache Storage on a reload (see keepCachesAlive) leaves the page nothing to
    // restore: not the app's fault, so skipped with the reason rather than failed.
    await wd.evaluate(async () => (await caches.open('xbrowser-probe')).put('/probe', new Response('kept')));
    await new Promise((ok) => setTimeout(ok, 500));   // for WebKit's keeper tab to open the new cache
    await wd.refresh();
    await instrument();
    const probe = await wd.evaluate(async () => {
      const hit = await (await caches.open('xbrowser-probe')).match('/probe');
      await caches.delete('xbrowser-probe');
      return !!hit;
    });
    if (!probe) {
      t.skip(`${engine} keeps no Cache Storage across a reload in a WebDriver session`);
      return;
    }
    await waitForImages(wd, 36);
    await waitForProgress(wd, 'the trained model to be restored', {
      done: () => document.querySelector('[data-testid=training-status]')?.dataset.state === 'done'
        && !!document.querySelector('[data-testid=confusion-matrix]'),
      progress: () => document.querySelector('[data-testid=training-status]')?.outerHTML, stallMs: 60_000,
    });
    const s = await wd.evaluate(status);
    assert.equal(s.mode, kept.status.mode);
    assert.equal(s.valAccuracy, kept.status.valAccuracy);
    assert.equal(s.valLoss, kept.status.valLoss);
    const head = await wd.download('[data-testid=export-head]', 'head.safetensors');
    assert.ok(head.equals(kept.head), 'the same head.safetensors after the reload');
  });

  test(`${engine}: Try it on a sample photo gives a prediction`, async () => {
    await ensureTrained();
    const monument = (await readdir(join(SAMPLE, 'monument'))).filter((f) => f.endsWith('.jpg')).sort()[0];
    await wd.setFiles('[data-testid=try-input]', join(SAMPLE, 'monument', monument));
    await waitForProgress(wd, 'a prediction from the file', {
      done: () => document.querySelector('[data-testid=try-result]')?.dataset.source === 'file',
      progress: () => [document.querySelector('[data-testid=try-error]')?.textContent,
        document.querySelector('[data-testid=try-result]')?.getAttribute('aria-busy')].join(' | '),
      stallMs: 120_000,
    });
    const result = await wd.evaluate(() => {
      const el = document.querySelector('[data-testid=try-result]');
      return { label: el.dataset.label, p: Number(el.dataset.probability), rows: el.querySelectorAll('li').length };
    });
    assert.ok(CLASSES.includes(result.label), `${JSON.stringify(result)}\n${await logs()}`);
    assert.ok(result.p > 1 / 3 && result.p <= 1, `probability ${result.p}`);
    assert.equal(result.rows, 3, 'every class listed');
    // "None of these" and the exports of issue 29 are there in every engine: the verdict follows the threshold.
    const extra = await wd.evaluate(() => {
      const el = document.querySelector('[data-testid=try-result]');
      const value = document.querySelector('[data-testid=none-threshold-value]')?.textContent;
      const enabled = (id) => document.querySelector(`[data-testid=${id}]`)?.disabled === false;
      document.querySelector('[data-testid=none-of-these]')?.scrollIntoView({ block: 'center' });
      return { verdict: el.dataset.verdict, threshold: Number(value?.replace(' %', '')) / 100,
        exports: ['export-tm', 'export-tflite', 'export-tflite-int8'].map(enabled) };
    });
    assert.ok(extra.threshold >= 0 && extra.threshold <= 1, JSON.stringify(extra));
    assert.equal(extra.verdict, result.p < extra.threshold ? 'none' : 'class', JSON.stringify(extra));
    assert.deepEqual(extra.exports, [true, true, true], 'the TM and TFLite downloads are offered');
    await writeFile(join(RESULTS, `xbrowser-${engine}-try.png`), await wd.screenshot());
  });

  test(`${engine}: a text file named .jpg is refused by name, and what was loaded stays`, async () => {
    const dir = join(tmpdir(), `ajuste-xbrowser-${process.pid}-${engine}`);
    await mkdir(dir, { recursive: true });
    const bad = join(dir, 'notes.jpg');
    await writeFile(bad, 'these are notes, not a photo\n');
    await ensureTrained();
    const before = await wd.evaluate(() => document.querySelector('[data-testid=dataset-summary]').dataset.images);
    // The animal class card's "Add images…" input: plain files, no folder upload (which drivers differ on).
    await wd.setFiles('[data-testid=class-card][data-class=animal] input[type=file]', bad);
    await waitForProgress(wd, 'notes.jpg to be refused', {
      done: () => [...document.querySelectorAll('[data-testid=file-errors] > li')]
        .some((li) => li.textContent.includes('notes.jpg')),
      progress: () => document.querySelector('[data-testid=dataset-notice]')?.textContent, stallMs: 60_000,
    });
    const errors = await wd.evaluate(() => [...document.querySelectorAll('[data-testid=file-errors] > li')]
      .map((li) => li.textContent));
    assert.ok(errors.some((t) => t.includes('notes.jpg') && t.includes('not an image')), errors.join(' | '));
    const after = await wd.evaluate(() => ({
      images: document.querySelector('[data-testid=dataset-summary]').dataset.images,
      classes: [...document.querySelectorAll('[data-testid=class-card] [data-testid=class-name]')].map((i) => i.value),
      state: document.querySelector('[data-testid=training-status]').dataset.state,
    }));
    assert.deepEqual(after, { images: before, classes: CLASSES, state: 'done' }, await logs());
  });
}
