// The Teachable Machine / TF.js export in ml5.js's imageClassifier, by hand (ml5 is not a pinned dependency: with
// its dependencies it is 685 MB, and its install script fails outside its own repository). Offline: ml5.min.js
// bundles its TF.js, and the page may fetch only from its own origin.
//
//   npm pack ml5@1.4.0 && tar xzf ml5-1.4.0.tgz                      # package/dist/ml5.min.js
//   AJUSTE_TFJS_DIR=/tmp/tfjs cargo test --release --test tfjs       # exports + the Rust probabilities
//   node scripts/check_ml5.mjs package/dist/ml5.min.js /tmp/tfjs/linear_head
//
// Classifies the four 224×224 golden images with `ml5.imageClassifier(URL of model.json)` (labels from
// metadata.json beside it) and compares with the Rust model's probabilities (probabilities.json): within 1e-3,
// same top class, or it exits with 1.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const GOLDEN = ['chelsea_cat', 'coffee', 'gradient', 'random_seed0'];
const [ml5Path, dir] = process.argv.slice(2);
if (!ml5Path || !dir) {
  console.error('usage: node scripts/check_ml5.mjs path/to/ml5.min.js EXPORT_DIR');
  process.exit(2);
}

const routes = {
  '/': ['<!doctype html><meta charset="utf-8"><script src="ml5.min.js"></script>', 'text/html'],
  '/ml5.min.js': [await readFile(ml5Path), 'text/javascript'],
};
for (const f of ['model.json', 'metadata.json', 'weights.bin']) {
  routes[`/my_model/${f}`] = [await readFile(join(dir, f)), f.endsWith('.json') ? 'application/json' : 'application/octet-stream'];
}
for (const g of GOLDEN) routes[`/${g}.png`] = [await readFile(join(ROOT, 'tests/fixtures/golden', `${g}.png`)), 'image/png'];
const server = createServer((req, res) => {
  const route = routes[new URL(req.url, 'http://x').pathname];
  if (!route) { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'content-type': route[1] }).end(route[0]);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--enable-unsafe-swiftshader'] });
const outside = [];
let code = 0;
try {
  const page = await browser.newPage();
  page.on('request', (r) => { if (!r.url().startsWith(url) && !r.url().startsWith('data:')) outside.push(r.url()); });
  await page.goto(url);
  const out = await page.evaluate(async (golden) => {
    ml5.setBackend('webgl');   // its first choice, WebGPU, is not there in headless Chromium
    let classifier = ml5.imageClassifier(new URL('my_model/model.json', location.href).href);
    if (classifier.then) classifier = await classifier;
    await classifier.ready;
    const result = { ml5: ml5.version, tfjs: ml5.tf.version.tfjs, backend: ml5.tf.getBackend(), images: {} };
    for (const g of golden) {
      const img = new Image();
      img.src = `${g}.png`;
      await img.decode();
      result.images[g] = await classifier.classify(img);
    }
    return result;
  }, GOLDEN);
  const want = JSON.parse(await readFile(join(dir, 'probabilities.json'), 'utf8'));
  const labels = JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8')).labels;
  let worst = 0;
  for (const g of GOLDEN) {
    const got = out.images[g];
    // ml5 answers by label, sorted: a label ImageNet has twice ("crane") may be either index.
    for (const c of got) {
      const diffs = labels.flatMap((l, i) => (l === c.label ? [Math.abs(c.confidence - want[g][i])] : []));
      worst = Math.max(worst, Math.min(...diffs));
    }
    const ours = labels[want[g].indexOf(Math.max(...want[g]))];
    if (got[0].label !== ours) { console.error(`${g}: ml5's top class ${got[0].label}, ours ${ours}`); code = 1; }
  }
  console.log(`ml5 ${out.ml5} (TF.js ${out.tfjs}, ${out.backend}) vs the Rust model: probabilities within `
    + `${worst.toExponential(2)} on ${GOLDEN.length} golden images`);
  if (!(worst < 1e-3)) code = 1;
  if (outside.length) { console.error(`requests outside the page's origin: ${outside.join(', ')}`); code = 1; }
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
