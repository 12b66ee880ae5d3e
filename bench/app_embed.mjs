// The app's own embedding phase (drop → features) on the CPU path, on 1 thread and on the worker pool
// (`?threads=N`), against the same page's bare rate: drops N generated JPEGs (bench/make_many.mjs) into the built
// page (dist/) in headless Chromium, trains the head only, and reads the feature time the results panel reports,
// with the part of it spent inside the backbone's batches (`data-backbone-seconds`): the rest is what the flow
// around them costs (reading images back, storing features, progress), measured in the same run.
// Also the peak resident memory of Chromium's renderer processes (the page, its worker and the helpers; VmRSS from
// /proc every 250 ms, every renderer on the machine: run it alone). Prints a markdown table. `trunk build` first.
//   node bench/app_embed.mjs [images=400] [threads=1,2]
import { rm, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { serveDist, launch, waitForTraining, ROOT } from '../tests/e2e/helpers.mjs';

const count = Number(process.argv[2] ?? 400);
const threadCounts = (process.argv[3] ?? '1,2').split(',').map(Number);
const dir = join(tmpdir(), `ajuste-embed-${process.pid}`);
execFileSync('node', [join(ROOT, 'bench/make_many.mjs'), String(count), dir], { stdio: 'ignore' });
// The renderers' pids are looked up every 2 s, not every sample: scanning all of /proc four times a second took
// 20–30 % of a core, which the page's two threads then shared with the sampler.
let renderers = [];
let lookedUp = 0;
async function rendererMb() {
  if (Date.now() - lookedUp > 2000) {
    lookedUp = Date.now();
    const found = [];
    for (const pid of await readdir('/proc').catch(() => [])) {
      if (!/^\d+$/.test(pid)) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes('--type=renderer')) found.push(pid);
    }
    renderers = found;
  }
  let kb = 0;
  for (const pid of renderers) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    kb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return kb / 1024;
}
const server = await serveDist();
const browser = await launch();
console.log('| CPU threads asked | images | features s | images/s (the page reports) | threads used | of it in the backbone s | lost to the flow | state | renderer memory, peak |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---|---:|');
for (const threads of threadCounts) {
  // A fresh context each time: nothing embedded before is reused.
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}?backend=cpu&threads=${threads}`);
  await page.getByTestId('model-status').filter({ hasText: 'ready' }).waitFor({ timeout: 120_000 });
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('dataset-input').setInputFiles(dir);
  // Ingest ends when the dataset buttons are usable again.
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=dataset-summary]')?.dataset.images) > 0
    && !document.querySelector('[data-testid=sample-button]')?.disabled, null, { timeout: 600_000 });
  const images = await page.getByTestId('dataset-summary').evaluate((el) => el.dataset.images);
  let peak = 0;
  const sampler = setInterval(async () => { peak = Math.max(peak, await rendererMb()); }, 250);
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  clearInterval(sampler);
  const timings = (await page.getByTestId('timings').textContent().catch(() => '')) ?? '';
  const m = /Features: ([\d.]+) s \(([\d.]+) images\/s(?: on (\d+) threads)?\)/.exec(timings);
  const backbone = Number(await page.getByTestId('timings').getAttribute('data-backbone-seconds').catch(() => NaN));
  const lost = m ? `${(100 * (1 - backbone / Number(m[1]))).toFixed(1)} %` : '?';
  console.log(`| ${threads} | ${images} | ${m?.[1] ?? '?'} | ${m?.[2] ?? '?'} | ${m ? (m[3] ?? 1) : '?'} | ${backbone.toFixed(1)} | ${lost} | ${status.state} | ${peak.toFixed(0)} MB |`);
  await context.close();
}
await browser.close();
server.close();
await rm(dir, { recursive: true, force: true });
