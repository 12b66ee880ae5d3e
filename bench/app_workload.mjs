// Issue 8's CPU workload run whole in the built app (dist/), not extrapolated: 200 images (letters26, the first
// 10 classes × their 20 fine-tuning images), LoRA r16 on the last 8 blocks, 30 epochs without early stopping,
// the page's defaults otherwise (augmentation on), in headless Chromium. Times the click on Train → done, and
// reads the page's own timings line. Prints a markdown row.
// `trunk build --release` first.
//   node bench/app_workload.mjs [backend=cpu] [epochs=30]
import { mkdtemp, mkdir, copyFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { serveDist, launch, chooseLora, waitForModel, waitForImages, waitForProgress, ROOT } from '../tests/e2e/helpers.mjs';

const backend = process.argv[2] ?? 'cpu';
const epochs = process.argv[3] ?? '30';
const letters = join(ROOT, 'bench/data/letters26');
const split = JSON.parse(await readFile(join(letters, 'letters26_split.json'), 'utf8'));
const classes = [...new Set(split.train.map((p) => p.split('/')[0]))].sort().slice(0, 10);
const dir = await mkdtemp(join(tmpdir(), 'ajuste-workload-'));
let images = 0;
for (const path of split.train) {
  const [cls, file] = path.split('/');
  if (!classes.includes(cls)) continue;
  await mkdir(join(dir, cls), { recursive: true });
  await copyFile(join(letters, path), join(dir, cls, file));
  images += 1;
}

const server = await serveDist();
const browser = await launch();
const page = await (await browser.newContext()).newPage();
try {
  await page.goto(`${server.url}?backend=${backend}`);
  await waitForModel(page);
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, images);
  await chooseLora(page, epochs);
  const augment = await page.getByTestId('augment').isChecked();
  const t0 = Date.now();
  await page.getByTestId('train-button').click();
  await waitForProgress(page, 'the fine-tuning to end', {
    done: () => ['done', 'error'].includes(document.querySelector('[data-testid=training-status]')?.dataset.state),
    progress: () => document.querySelector('[data-testid=training-status]')?.textContent,
    stallMs: 300_000, ceilingMs: 3_600_000,
  });
  const minutes = (Date.now() - t0) / 60_000;
  const status = await page.getByTestId('training-status').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
  const timings = (await page.getByTestId('timings').textContent().catch(() => '')).trim();
  console.log(`| ${backend}, LoRA r16 last 8 blocks, ${images} images (letters26, ${classes.length} classes), ${epochs} epochs, augmentation ${augment ? 'on' : 'off'} | ${status.state} | **${minutes.toFixed(1)} min** | ${timings.replace(/\|/g, '/')} |`);
} finally {
  await browser.close();
  server.close();
  await rm(dir, { recursive: true, force: true });
}
