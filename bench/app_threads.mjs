// The CPU path on 1, 2, … threads (src/web/pool.rs, finetune::shard): the built app (dist/) in headless Chromium
// with `?backend=cpu&threads=N`, a set of letters (bench/data/letters26's training split, the first K per class),
// the default Auto from Train to done. Reads the page's own figures: the features' images/s, the LoRA steps'
// images/s (median of the status line's readings), the LoRA phase's wall time, the kept run and its validation
// accuracy. Prints a markdown table; speed-ups are against the first thread count given.
//   node bench/app_threads.mjs [threads=1,2] [per-class=10] [epochs=default]
import { rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { serveDist, launch, waitForTraining, waitForModel, waitForImages, lettersSubset } from '../tests/e2e/helpers.mjs';

const threads = (process.argv[2] ?? '1,2').split(',').map(Number);
const perClass = Number(process.argv[3] ?? 10);
const epochs = process.argv[4];

// 26 classes: every class of the set.
const { dir, count } = await lettersSubset(26, perClass);

const server = await serveDist();
const browser = await launch();
const rows = [];
for (const n of threads) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}?backend=cpu&threads=${n}`);
  await waitForModel(page);
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, count);
  if (epochs) {
    await page.getByTestId('epochs').fill(epochs);
    await page.getByTestId('epochs').dispatchEvent('change');
  }
  await page.evaluate(() => {
    window.__seen = [];
    const status = document.querySelector('[data-testid=training-status]');
    new MutationObserver(() => window.__seen.push({ t: performance.now(), text: status.textContent }))
      .observe(status, { childList: true, characterData: true, subtree: true });
  });
  const t0 = await page.evaluate(() => performance.now());
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  const seen = await page.evaluate(() => window.__seen);
  const t1 = seen.length ? seen[seen.length - 1].t : t0;
  const timings = await page.getByTestId('timings').textContent().catch(() => '');
  const lora = seen.filter((s) => /LoRA/.test(s.text));
  const rates = lora.map((s) => s.text.match(/step \d+ \/ \d+ \(([\d.]+) images\/s/)).filter(Boolean).map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const features = timings.match(/\(([\d.]+) images\/s/);
  rows.push({
    n, state: status.state, total: (t1 - t0) / 1000,
    features: features ? Number(features[1]) : NaN,
    loraRate: rates[Math.floor(rates.length / 2)] ?? NaN,
    loraPhase: lora.length ? (lora[lora.length - 1].t - lora[0].t) / 1000 : NaN,
    kept: status.mode, accuracy: Number(status.valAccuracy), epochs: status.epoch, valLoss: status.valLoss, timings,
  });
  await page.context().close();
}
await browser.close();
server.close();
await rm(dir, { recursive: true, force: true });

const base = rows[0];
console.log(`Auto on ${count} letters (${perClass} per class, 26 classes), ?backend=cpu, ${cpus().length} logical cores` +
  `${epochs ? `, ${epochs} epochs` : ''}; speed-ups against ${base.n} thread(s).\n`);
console.log('| threads | Train → done s | speed-up | features images/s | LoRA steps images/s | speed-up | per thread | LoRA phase s | kept | val accuracy | epochs charted | kept val loss |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|');
for (const r of rows) {
  const up = base.loraRate ? r.loraRate / base.loraRate : NaN;
  console.log(`| ${r.n} | ${r.total.toFixed(1)} | ${(base.total / r.total).toFixed(2)}× | ${r.features.toFixed(1)} | ` +
    `${r.loraRate.toFixed(1)} | ${up.toFixed(2)}× | ${(up / (r.n / base.n)).toFixed(2)} | ${r.loraPhase.toFixed(1)} | ` +
    `${r.kept} | ${r.accuracy.toFixed(3)} | ${r.epochs} | ${r.valLoss} |`);
}
for (const r of rows) if (r.state !== 'done') console.log(`\n${r.n} threads ended in state ${r.state}`);
console.log(`\nThe page's timings line at ${rows[rows.length - 1].n} threads: "${rows[rows.length - 1].timings.trim()}"`);
