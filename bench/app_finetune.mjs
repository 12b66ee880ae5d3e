// LoRA fine-tuning speed in the built app (dist/), CPU or WebGPU backend, in headless Chromium: the bundled sample, LoRA r16
// on the last 8 blocks, a few epochs, with and without augmentation. Reads the images/s the page itself reports
// while it fine-tunes (in its worker) and extrapolates to issue 8's target workload (200 images x 30 epochs): from
// the median rate of the training steps, and from the whole LoRA phase's wall time (caching the activations and
// the augmentation bank, scaled by images; training and validation, scaled by images and epochs), which counts
// what a rate leaves out.
// `trunk build --release` first. Prints markdown rows.
//   node bench/app_finetune.mjs [epochs=3] [backend=cpu] [augmentation=off,on]
import { serveDist, launch, chooseLora, waitForTraining, waitForModel, waitForImages } from '../tests/e2e/helpers.mjs';

const epochs = process.argv[2] ?? '3';
const backend = process.argv[3] ?? 'cpu';
const augments = (process.argv[4] ?? 'off,on').split(',').map((a) => a === 'on');
const server = await serveDist();
const browser = await launch();
console.log(`| ${backend}, LoRA r16 last 8 blocks, sample (36 images), ${epochs} epochs | images/s (median of the page's training-step readings) | LoRA phase s | 200 images × 30 epochs, from the median | 200 images × 30 epochs, from the phase |`);
console.log('|---|---:|---:|---:|---:|');
for (const augment of augments) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}?backend=${backend}`);
  await waitForModel(page);
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  await chooseLora(page, epochs);
  if ((await page.getByTestId('augment').isChecked()) !== augment) await page.getByTestId('augment').click();
  await page.evaluate(() => {
    window.__rates = [];
    const status = document.querySelector('[data-testid=training-status]');
    new MutationObserver(() => {
      const m = status.textContent.match(/(step|batch) \d+ \/ \d+ \(([\d.]+) images\/s/);
      if (m) window.__rates.push({ t: performance.now(), rate: Number(m[2]), step: m[1] === 'step' });
    }).observe(status, { childList: true, characterData: true, subtree: true });
  });
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  const rates = await page.evaluate(() => window.__rates);
  const sorted = rates.filter((r) => r.step).map((r) => r.rate).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const phase = rates.length ? (rates[rates.length - 1].t - rates[0].t) / 1000 : NaN;
  // The caching phase (the cut activations, and the augmentation bank) runs once: it scales with the images only.
  const cachingEnd = rates.filter((r) => !r.step).map((r) => r.t).pop() ?? rates[0]?.t;
  const caching = rates.length ? (cachingEnd - rates[0].t) / 1000 : NaN;
  const scaled = ((caching + (phase - caching) * (30 / Number(epochs))) * (200 / 36)) / 60;
  console.log(`| augmentation ${augment ? 'on' : 'off'} (${status.state}) | ${median.toFixed(1)} | ${phase.toFixed(0)} | ${(6000 / median / 60).toFixed(1)} min | ${scaled.toFixed(1)} min |`);
  await page.context().close();
}
await browser.close();
server.close();
