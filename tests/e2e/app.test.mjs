// End to end, as a person uses the app: open the page, drop a folder, train, watch the charts, download.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { serveDist, launch, makeDataset, parseSafetensors, waitForTraining, waitForModel, waitForImages, SAMPLE,
  RESULTS, pageLogs, download } from './helpers.mjs';

let server, browser;
const foreignRequests = [];

before(async () => {
  await mkdir(RESULTS, { recursive: true });
  server = await serveDist();
  browser = await launch();
});
after(async () => { await browser?.close(); server?.close(); });

async function openPage(backend) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  const logs = pageLogs(page);
  page.on('request', (r) => { if (!r.url().startsWith(server.url) && !/^(data|blob):/.test(r.url())) foreignRequests.push(r.url()); });
  await page.goto(`${server.url}?backend=${backend}`);
  await waitForModel(page);
  return { page, logs, context };
}


const CLASSES3 = {
  animal: join(SAMPLE, 'animal'),
  monument: join(SAMPLE, 'monument'),
  tool: join(SAMPLE, 'tool'),
};

test('WebGPU: drop a folder, train, see the charts reach done, download model.safetensors', { timeout: 1_800_000 }, async () => {
  // Small on purpose: SwiftShader's WebGPU embeds well under one image per second.
  const dir = await makeDataset('webgpu', CLASSES3, 3, {
    'notes.txt': 'not in a class folder',
    'tool/readme.txt': 'not an image',
    'animal/broken.jpg': Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46]),
  });
  const { page, logs } = await openPage('webgpu');
  assert.equal(await page.getByTestId('backend').getAttribute('data-backend'), 'webgpu');
  await page.getByTestId('dataset-input').setInputFiles(dir);
  const summary = page.getByTestId('dataset-summary');
  await waitForImages(page, 9);
  assert.equal(await summary.getAttribute('data-classes'), '3');
  const rejected = await page.getByTestId('file-errors').locator(':scope > li').allTextContents();
  assert.equal(rejected.length, 3, `rejected: ${rejected.join(' | ')}`);
  for (const name of ['notes.txt', 'readme.txt', 'broken.jpg']) {
    assert.ok(rejected.some((t) => t.includes(name)), `${name} is named in the errors: ${rejected}`);
  }

  // The head alone (seconds); the deeper modes have their own test (finetune.test.mjs).
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);
  assert.ok(Number(status.epoch) >= 1);
  assert.ok(Number.isFinite(Number(status.valLoss)));
  assert.ok((await page.locator('[data-testid=charts] polyline').count()) >= 4, 'both charts have two lines');
  await page.screenshot({ path: join(RESULTS, 'trained-webgpu.png'), fullPage: true });

  const model = parseSafetensors((await download(page, 'export-button', 'model.safetensors')).bytes);
  assert.deepEqual(model.header['classifier.weight'].shape, [3, 1280]);
  assert.deepEqual(model.header['stem.conv.weight'].shape, [32, 3, 3, 3]);
  assert.equal(model.header['blocks.15.project.conv.weight'].dtype, 'F32');
  assert.deepEqual(JSON.parse(model.metadata.labels), ['animal', 'monument', 'tool']);
  assert.ok(model.f32('classifier.weight').every(Number.isFinite));
  const labels = ((await download(page, 'export-labels', 'labels.txt')).bytes).toString();
  assert.equal(labels, '0 animal\n1 monument\n2 tool\n');
  const config = JSON.parse((await download(page, 'export-config', 'config.json')).bytes);
  assert.deepEqual(config.id2label, { 0: 'animal', 1: 'monument', 2: 'tool' });
  assert.deepEqual(foreignRequests, [], 'the page makes no request to another origin');
});

test('CPU: the bundled sample trains to a useful accuracy; bad input keeps what was loaded', { timeout: 1_800_000 }, async () => {
  const { page, logs } = await openPage('cpu');
  assert.equal(await page.getByTestId('backend').getAttribute('data-backend'), 'cpu');
  // A reload takes the model from Cache Storage instead of downloading it again.
  await page.reload();
  await waitForModel(page, 'from the browser cache');
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  // What the pretrained model sees in the first photo (an alpaca) before any fine-tuning.
  await page.locator('.thumb').first().click();
  assert.match(await page.getByTestId('imagenet-top5').textContent(), /llama/);
  // A folder with one class only and a bad file: rejected with messages, the sample stays loaded.
  const bad = await makeDataset('bad', {}, 0, { 'stuff/empty.png': Buffer.from('') });
  await page.getByTestId('dataset-input').setInputFiles(bad);
  await page.getByTestId('file-errors').locator(':scope > li').first().waitFor({ timeout: 30_000 });
  assert.match(await page.getByTestId('file-errors').textContent(), /empty\.png/);
  assert.equal(await page.getByTestId('dataset-summary').getAttribute('data-images'), '36');

  // The head alone (seconds); the deeper modes have their own test (finetune.test.mjs).
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);
  assert.ok(Number(status.valAccuracy) >= 0.8, `val accuracy ${status.valAccuracy}`);
  assert.ok(page.workers().some((w) => w.url().endsWith('/worker_loader.js')), 'the training ran in the worker');
  await page.getByTestId('confusion-matrix').waitFor();
  await page.screenshot({ path: join(RESULTS, 'trained-cpu.png'), fullPage: true });
  const head = parseSafetensors((await download(page, 'export-head', 'head.safetensors')).bytes);
  assert.deepEqual(head.header['classifier.weight'].shape, [3, 1280]);
  const valAccuracy = await page.getByTestId('training-status').getAttribute('data-val-accuracy');

  // Nothing is lost on reload: the images and the trained model come back, and the same head downloads.
  await page.reload();
  await waitForImages(page, 36);
  await page.getByTestId('training-status').and(page.locator('[data-state=done]')).waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('training-status').getAttribute('data-val-accuracy'), valAccuracy);
  await page.getByTestId('confusion-matrix').waitFor();
  await page.screenshot({ path: join(RESULTS, 'restored-cpu.png'), fullPage: true });
  const again = parseSafetensors((await download(page, 'export-head', 'head.safetensors')).bytes);
  assert.deepEqual(again.f32('classifier.weight'), head.f32('classifier.weight'));
  assert.deepEqual(again.f32('classifier.bias'), head.f32('classifier.bias'));
  assert.equal(again.metadata.labels, head.metadata.labels);
  assert.deepEqual(foreignRequests, []);
});
