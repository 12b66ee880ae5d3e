// The many-images benchmark (issue 11): drops the folder bench/make_many.mjs made (10,000 JPEGs in 20 classes)
// into the built page (dist/, CPU path) in headless Chromium with an on-disk profile, and measures ingest time,
// a reload (time, images back), embedding, head training, a second reload, and the peak resident memory of the
// renderer processes (VmRSS from /proc, sampled every 250 ms throughout). Prints a markdown table.
//   trunk build --release && node bench/make_many.mjs && node bench/app_many.mjs [dir] [epochs]
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { serveDist, waitForProgress, ROOT } from '../tests/e2e/helpers.mjs';
import { launchSampled } from './rss.mjs';

const dir = process.argv[2] ?? join(ROOT, 'bench/data/many');
const epochs = process.argv[3] ?? '20';
const classes = (await readdir(dir)).sort();
let total = 0;
for (const c of classes) total += (await readdir(join(dir, c))).length;

const server = await serveDist();
const { profile, context, rss, page, logs } = await launchSampled('ajuste-many-');
const rows = [];
const row = (what, value) => { rows.push([what, value]); console.error(`${what}: ${value}`); };
const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;
const seconds = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
const images = () => page.evaluate(() => Number(document.querySelector('[data-testid=dataset-summary]')?.dataset.images ?? 0));
const status = () => page.evaluate(() => document.querySelector('[data-testid=training-status]')?.textContent);
async function waitImages(n) {
  await waitForProgress(page, `${n} images`, {
    done: (n) => document.querySelector('[data-testid=dataset-summary]')?.dataset.images === String(n),
    progress: () => [document.querySelector('[data-testid=dataset-summary]')?.dataset.images,
      document.querySelector('.progress span')?.textContent].join(' | '),
    arg: n, stallMs: 120_000, ceilingMs: 3_600_000,
  });
}
async function waitModel() {
  await page.getByTestId('model-status').filter({ hasText: 'ready' }).waitFor({ timeout: 300_000 });
}
/** After a change: the index is saved once the storage line shows usage and the page stops reading. */
async function waitSaved() {
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=storage-usage]')?.dataset.usage) > 0,
    null, { timeout: 600_000 });
  await new Promise((ok) => setTimeout(ok, 3000));
}

try {
  await page.goto(`${server.url}?backend=cpu`);
  await waitModel();
  await rss.sample();
  row('renderer after the model loaded', mb(rss.now));

  rss.phase = 'ingest';
  let t0 = Date.now();
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitImages(total);
  row(`ingest of ${total} JPEGs (${classes.length} classes)`, seconds(t0));
  await waitSaved();
  const usage = await page.getByTestId('storage-usage').evaluate((el) => el.dataset.usage);
  row('browser storage used', `${(Number(usage) / 1e6).toFixed(0)} MB (${(Number(usage) / total / 1e3).toFixed(1)} kB per image)`);
  row('renderer peak during ingest', mb(rss.phases.ingest));

  rss.phase = 'reload';
  t0 = Date.now();
  await page.reload();
  await waitImages(total).catch((e) => logs.push(String(e)));
  row('reload → images back', `${seconds(t0)}, ${await images()} of ${total}`);
  await waitModel();

  rss.phase = 'embedding';
  await page.locator('details.options > summary').click();
  await page.locator('#opt-epochs').fill(epochs);
  await page.locator('#opt-epochs').dispatchEvent('change');
  await page.getByTestId('finetune-mode').selectOption('head');
  t0 = Date.now();
  await page.getByTestId('train-button').click();
  await waitForProgress(page, 'the embedding to end', {
    done: () => document.querySelector('[data-testid=training-status]')?.dataset.state !== 'embedding',
    progress: () => document.querySelector('[data-testid=training-status]')?.textContent,
    stallMs: 300_000, ceilingMs: 7_200_000,
  });
  const embedSeconds = (Date.now() - t0) / 1000;
  row('embedding (CPU path)', `${embedSeconds.toFixed(0)} s (${(total / embedSeconds).toFixed(1)} images/s)`);
  rss.phase = 'training';
  t0 = Date.now();
  await waitForProgress(page, 'the training to end', {
    done: () => ['done', 'error'].includes(document.querySelector('[data-testid=training-status]')?.dataset.state),
    progress: () => document.querySelector('[data-testid=training-status]')?.textContent,
    stallMs: 300_000, ceilingMs: 3_600_000,
  });
  const end = await page.getByTestId('training-status').evaluate((el) => ({ ...el.dataset }));
  row(`head training (${epochs} epochs max)`, `${seconds(t0)}, ${end.state}, val accuracy ${Number(end.valAccuracy).toFixed(3)}`);
  row('renderer peak during embedding / training', `${mb(rss.phases.embedding)} / ${mb(rss.phases.training)}`);

  rss.phase = 'reload 2';
  await new Promise((ok) => setTimeout(ok, 3000));
  t0 = Date.now();
  await page.reload();
  await waitImages(total).catch((e) => logs.push(String(e)));
  row('second reload → images back', `${seconds(t0)}, ${await images()} of ${total}`);
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=storage-usage]')?.dataset.features) > 0,
    null, { timeout: 120_000 }).catch(() => {});
  row('features kept after the reload', await page.getByTestId('storage-usage').evaluate((el) => el.dataset.features));
} catch (e) {
  logs.push(`benchmark stopped: ${e.message}; training status: ${await status().catch(() => '?')}`);
}
await rss.sample();
rss.stop();
row('**renderer peak resident memory** (largest renderer process, sampled every 250 ms)', `**${mb(rss.peakOne)}**`);
row('all renderer processes together, peak', mb(rss.peakAll));
await context.close();
server.close();
await rm(profile, { recursive: true, force: true });
console.log('| step | result |\n|---|---|');
for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
if (logs.length) console.log(`\n<!-- page messages (warnings, errors):\n${logs.slice(-20).join('\n')}\n-->`);
