// Drop-to-trained-head timing of the built app (dist/) for the bundled sample, per backend, in headless Chromium.
// Prints markdown rows. Used by bench/run.sh; `trunk build` first.
import { mkdir, cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { serveDist, launch, waitForTraining, ROOT } from '../tests/e2e/helpers.mjs';

const backends = (process.argv[2] ?? 'cpu,webgpu').split(',');
const dir = join(tmpdir(), `ajuste-bench-${process.pid}`, 'sample');
await rm(dir, { recursive: true, force: true });
for (const cls of ['animal', 'monument', 'tool']) {
  await mkdir(join(dir, cls), { recursive: true });
  await cp(join(ROOT, 'public/sample', cls), join(dir, cls), { recursive: true });
}
const server = await serveDist();
const browser = await launch();
console.log('| backend | images | drop → trained head s | embedding images/s | head training s (50 epochs max, with chart updates) | epochs | val accuracy |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const backend of backends) {
  const page = await (await browser.newContext()).newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  await page.goto(`${server.url}?backend=${backend}`);
  await page.getByTestId('model-status').filter({ hasText: 'ready' }).waitFor({ timeout: 120_000 });
  // The head alone (what the peers train), early stopping off, so every run trains the full 50 epochs.
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.locator('details.options > summary').click();
  await page.locator('#opt-patience').fill('0');
  await page.locator('#opt-patience').dispatchEvent('change');
  const t0 = Date.now();
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await page.waitForFunction(() => document.querySelector('[data-testid=dataset-summary]')?.dataset.images === '36', null, { timeout: 120_000 });
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page, 1_500_000);
  const seconds = (Date.now() - t0) / 1000;
  const timings = await page.getByTestId('timings').textContent().catch(() => '');
  const ips = /\(([\d.]+) images\/s/.exec(timings)?.[1] ?? '?';
  const head = /Training: ([\d.]+) s/.exec(timings)?.[1] ?? '?';
  const compute = logs.find((l) => l.startsWith('head training:')) ?? '';
  console.log(`| ${backend} | 36 | ${seconds.toFixed(1)} | ${ips} | ${head} | ${status.epoch} | ${Number(status.valAccuracy).toFixed(3)} |`);
  if (compute) console.log(`<!-- ${backend}: ${compute} -->`);
  if (status.state !== 'done') console.log(`<!-- ${backend} ended in state ${status.state}: ${status.text} -->`);
}
await browser.close();
server.close();
