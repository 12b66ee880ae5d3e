// Issue 31: the default Auto at scale. Drops a class-per-folder set (default bench/data/many: 10,000 JPEGs in 20
// classes, from bench/make_many.mjs) into the built page (dist/, CPU path) in headless Chromium with an on-disk
// profile, trains in the default mode from Train to done, then reloads. Measures drop → done, the head phase
// (features + head run) and the deep (LoRA) phase, the deep run's budget and steps as the page's deep summary
// says, the renderer's peak resident memory per phase (bench/rss.mjs), and whether the images and the trained
// model come back after the reload. Prints a markdown table.
//   node bench/make_many.mjs && node bench/app_scale.mjs [dir] [budgetMinutes]
import { readdir, readFile, rm, mkdtemp } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { tmpdir, cpus } from 'node:os';
import { serveDist, waitForProgress, ROOT } from '../tests/e2e/helpers.mjs';
import { launchSampled } from './rss.mjs';

const dir = process.argv[2] ?? join(ROOT, 'bench/data/many');
const budget = process.argv[3];
const classes = (await readdir(dir)).sort();
// The page keeps one copy of identical images (bench/make_many.mjs's generator repeats a few): count distinct files.
const distinct = new Set();
for (const c of classes) {
  for (const f of await readdir(join(dir, c))) {
    distinct.add(createHash('sha256').update(await readFile(join(dir, c, f))).digest('hex'));
  }
}
const total = distinct.size;
const zip = join(await mkdtemp(join(tmpdir(), 'ajuste-scale-zip-')), 'images.zip');
execFileSync('python3', ['-c', `import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
    for c in sorted(os.listdir(root)):
        for f in sorted(os.listdir(os.path.join(root, c))):
            z.write(os.path.join(root, c, f), c + '/' + f)`, dir, zip]);
const HOUR = 3_600_000;

const server = await serveDist();
const { profile, context, rss, page, logs } = await launchSampled('ajuste-scale-');
page.on('dialog', (d) => d.accept()); // leaving with unsaved work asks first
const rows = [];
const row = (what, value) => { rows.push([what, value]); console.error(`${what}: ${value}`); };
const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;
const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const images = () => page.evaluate(() => Number(document.querySelector('[data-testid=dataset-summary]')?.dataset.images ?? 0));
const statusNow = () => page.evaluate(() => {
  const el = document.querySelector('[data-testid=training-status]');
  return { ...el?.dataset, text: el?.textContent ?? '' };
});
async function waitImages(n) {
  await waitForProgress(page, `${n} images`, {
    done: (n) => document.querySelector('[data-testid=dataset-summary]')?.dataset.images === String(n),
    progress: () => [document.querySelector('[data-testid=dataset-summary]')?.dataset.images,
      document.querySelector('.progress span')?.textContent].join(' | '),
    arg: n, stallMs: 120_000, ceilingMs: HOUR,
  });
}
async function waitModel() {
  await page.getByTestId('model-status').filter({ hasText: 'ready' }).waitFor({ timeout: 300_000 });
}
/** After a change: the index is saved once the storage line shows usage and the page stops reading. */
async function waitSaved() {
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=storage-usage]')?.dataset.usage) > 0,
    null, { timeout: 600_000 });
  await sleep(3000);
}
/** The page's summary of the deep run (budget, steps, why it stopped), or null on a build without one. */
const deepSummary = () => page.evaluate(() => {
  const el = document.querySelector('[data-testid=deep-summary]');
  return el && { ...el.dataset, text: el.textContent.trim() };
});

// Auto's head run says "Training the new head"; any other training status line belongs to the deep run
// (its caching, steps and final evaluation).
const HEAD = /^\s*Training the new head/;
/** Follows the training status every 250 ms (switching the memory phase at the deep run's start) until it ends. */
async function follow(marks) {
  let last = '', lastChange = Date.now();
  for (;;) {
    const st = await statusNow();
    const now = Date.now();
    if (st.state !== 'embedding' && !marks.embedded) marks.embedded = now;
    if (st.state === 'training' && !HEAD.test(st.text) && !marks.deep) { marks.deep = now; rss.phase = 'deep'; }
    if (st.state === 'done' || st.state === 'error') { marks.end = now; return st; }
    if (st.text !== last) { last = st.text; lastChange = now; }
    if (now - lastChange > 600_000 || now - marks.train > 2 * HOUR) {
      throw new Error(`gave up waiting for the training to end; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(250);
  }
}

let end, summary, marks;
// A heartbeat on stderr every 30 s (these runs are long): images read and the status line.
const heartbeat = setInterval(() => {
  Promise.race([
    page.evaluate(() => [document.querySelector('[data-testid=dataset-summary]')?.dataset.images,
      document.querySelector('[data-testid=training-status]')?.textContent].join(' | ')),
    sleep(10_000).then(() => 'the page did not answer within 10 s'),
  ]).then((t) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${t}`), () => {});
}, 30_000);
try {
  await page.goto(`${server.url}?backend=cpu`);
  await waitModel();
  await rss.sample();
  row(`renderer after the model loaded (${cpus().length} logical cores here)`, mb(rss.now));
  if (budget !== undefined) {
    await page.locator('details.options').evaluate((d) => { d.open = true; });
    if (await page.locator('#opt-budget').count()) {
      await page.locator('#opt-budget').fill(String(budget));
      await page.locator('#opt-budget').dispatchEvent('change');
      row('deep run time budget asked for', `${budget} min`);
    } else {
      console.error('WARNING: no #opt-budget on this build: the default budget (if any) stays');
      row('deep run time budget asked for', `${budget} min, **not set: no #opt-budget on this build**`);
    }
  }

  rss.phase = 'ingest';
  const drop = Date.now();
  // One .zip rather than a folder: Playwright's upload of a 10,000-file folder starved its own event loop here.
  await page.getByTestId('zip-input').setInputFiles(zip);
  await waitImages(total);
  row(`ingest of ${total} JPEGs (${classes.length} classes, one .zip)`, s(Date.now() - drop));
  await waitSaved();

  rss.phase = 'head'; // the features and the head-only run
  marks = { drop, train: Date.now() };
  await page.getByTestId('train-button').click();
  end = await follow(marks);
  const deepStart = marks.deep ?? marks.end;
  row('Train → done (mode left at its default)', `${s(marks.end - marks.train)}, ${end.state}`);
  row('**drop → done** (ingest, save, Train, done)', `**${s(marks.end - drop)}**`);
  row('head phase: features + head run', `${s(deepStart - marks.train)} (features ${s(marks.embedded - marks.train)})`);
  row('deep phase', marks.deep ? s(marks.end - marks.deep) : 'none seen (no deep status line)');
  summary = await deepSummary();
  if (summary) {
    row('deep summary', summary.text);
    const bs = Number(summary.budgetSeconds);
    row('deep run: budget / steps / best step / seconds / reason',
      `${bs} s / ${summary.steps} / ${summary.bestStep} / ${summary.seconds} s / ${summary.reason}`);
    if (Number.isFinite(bs)) {
      const limit = bs * 1000 + (deepStart - marks.train);
      const took = marks.end - marks.train;
      row('target: done within the budget plus the head phase',
        took <= limit ? `yes (${s(limit - took)} to spare)` : `**no: over by ${s(took - limit)}**`);
    }
  } else {
    row('deep summary', '(no deep summary on this build)');
  }
  const runs = await page.getByTestId('run-charts').evaluateAll((els) => els.map((e) => `${e.dataset.run} ${e.dataset.epochs} epochs`));
  row('runs charted; kept', `${runs.join(', ') || '?'}; kept **${end.mode || '?'}**`);
  row('final validation accuracy (kept run)', Number(end.valAccuracy).toFixed(3));
  const explanation = await page.getByTestId('auto-explanation').textContent().catch(() => '');
  if (explanation.trim()) row('Auto says', explanation.trim());
  row('the page\'s timings line', (await page.getByTestId('timings').textContent().catch(() => '')).trim() || '?');

  rss.phase = 'reload';
  // The trained model is stored after done; reloading before would lose it, which is not what this measures.
  await page.waitForFunction(async () => Boolean(await (await caches.open('ajuste-work-v1')).match('saved/training.json')),
    null, { timeout: 300_000, polling: 500 }).catch((e) => logs.push(`trained model not seen in storage: ${e.message}`));
  await sleep(2000);
  const t0 = Date.now();
  await page.reload();
  await waitImages(total).catch((e) => logs.push(String(e)));
  row('reload → images back', `${s(Date.now() - t0)}, ${await images()} of ${total}`);
  const back = await page.getByTestId('training-status').and(page.locator('[data-state=done]'))
    .waitFor({ timeout: 300_000 }).then(() => true, () => false);
  const after = await statusNow();
  const matrix = await page.getByTestId('confusion-matrix').count();
  const same = after.valAccuracy === end.valAccuracy && after.mode === end.mode;
  row('reload → trained model back', back && same && matrix
    ? `yes, ${s(Date.now() - t0)} (kept ${after.mode}, val accuracy ${Number(after.valAccuracy).toFixed(3)}, confusion matrix shown)`
    : `**no**: state ${after.state}, mode ${after.mode}, val accuracy ${after.valAccuracy}, confusion matrix ${matrix ? 'shown' : 'absent'}`);
  const summaryBack = await deepSummary();
  if (summary) row('deep summary after the reload', summaryBack?.text === summary.text ? 'the same' : `${summaryBack?.text ?? 'absent'}`);
} catch (e) {
  logs.push(`benchmark stopped: ${e.message}; training status: ${(await statusNow().catch(() => ({}))).text ?? '?'}`);
}
clearInterval(heartbeat);
await rss.sample();
rss.stop();
for (const phase of ['ingest', 'head', 'deep', 'reload']) {
  row(`renderer peak during ${phase}`, rss.phases[phase] ? mb(rss.phases[phase]) : '(phase not reached)');
}
row('**renderer peak resident memory** (largest renderer process, sampled every 250 ms)',
  `**${mb(rss.peakOne)}** (target under 1 GB: ${rss.peakOne < 1024 * 1024 ? 'yes' : '**no**'})`);
row('all renderer processes together, peak', mb(rss.peakAll));
await context.close();
server.close();
await rm(profile, { recursive: true, force: true });
await rm(dirname(zip), { recursive: true, force: true });
console.log(`Auto at scale: ${total} JPEGs in ${classes.length} classes (${dir}), ?backend=cpu, ${cpus().length} logical cores` +
  `${budget !== undefined ? `, budget ${budget} min asked` : ', default budget'}.\n`);
console.log('| step | result |\n|---|---|');
for (const [what, value] of rows) console.log(`| ${what} | ${String(value).replace(/\|/g, '\\|').replace(/\s+/g, ' ')} |`);
if (logs.length) console.log(`\n<!-- page messages (warnings, errors):\n${logs.slice(-20).join('\n')}\n-->`);
