// The page at the phone setting (issue 26 §3): a 390×844 touch screen whose browser reports 4 GB of memory and 8
// cores, so the page trains on 2 threads with at most 64 MB of cached activations. The default Auto on the bundled
// sample, then on N images made by bench/make_many.mjs (default 1,000, 20 classes) with few epochs per run (the
// memory is that of the phases, not of their length); Train → done time and the renderer's peak resident memory
// (the page and its workers; bench/rss.mjs). Prints a markdown table.
//   node bench/make_many.mjs 1000 /tmp/many1000 && node bench/app_phone.mjs /tmp/many1000 [epochs=2]
import { mkdtemp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';
import { serveDist, waitForTraining, waitForModel, waitForImages } from '../tests/e2e/helpers.mjs';
import { rssSampler } from './rss.mjs';

const dir = process.argv[2];
const epochs = process.argv[3] ?? '2';
const server = await serveDist();
const rows = [];
const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;

async function run(what, load, count, epochsField) {
  const profile = await mkdtemp(join(tmpdir(), 'ajuste-phone-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
    args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-dev-shm-usage'],
  });
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => 4 });
    Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 8 });
  });
  const rss = rssSampler(profile);
  const page = context.pages()[0] ?? await context.newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  const note = await page.getByTestId('threads-note').textContent();
  rss.phase = 'ingest';
  await load(page);
  await waitForImages(page, count);
  if (epochsField) {
    await page.getByTestId('epochs').fill(epochsField);
    await page.getByTestId('epochs').dispatchEvent('change');
  }
  rss.phase = 'training';
  const t0 = Date.now();
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  const seconds = (Date.now() - t0) / 1000;
  await rss.sample();
  rss.stop();
  const timings = await page.getByTestId('timings').textContent().catch(() => '');
  rows.push(`| ${what} | ${status.state}, kept ${status.mode} | ${seconds.toFixed(0)} s | ${mb(rss.phases.ingest ?? 0)} | ` +
    `${mb(rss.phases.training ?? 0)} | **${mb(rss.peakOne)}** | ${timings.trim()} |`);
  console.error(rows[rows.length - 1], '\n', note);
  await context.close();
}

await run('the sample (36 photos), Auto, default epochs', (p) => p.getByTestId('sample-button').click(), 36);
if (dir) {
  let count = 0;
  for (const c of await readdir(dir)) count += (await readdir(join(dir, c))).length;
  await run(`${count} small JPEGs, Auto, ${epochs} epochs per run`, (p) => p.getByTestId('dataset-input').setInputFiles(dir),
    count, epochs);
}
server.close();
console.log('| what | ended | Train → done | renderer peak, reading | renderer peak, training | renderer peak | timings line |');
console.log('|---|---|---:|---:|---:|---:|---|');
for (const r of rows) console.log(r);
