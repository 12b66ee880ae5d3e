// The CPU pool (src/web/pool.rs): with `?threads=2` the training worker shares each batch with a helper worker,
// says so in the results, and trains what one thread trains. Embedding: the features of every image are the
// same, in the same order, so the head and its validation losses are identical. Auto's LoRA run
// (finetune::shard): every batch in the same fixed parts whatever the threads, their gradients summed in order, so
// its losses are one thread's exactly too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, waitForTraining, waitForModel, waitForImages, pageLogs, download,
  parseSafetensors } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

async function trainSample(threads, mode = 'head') {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const logs = pageLogs(page);
  await page.goto(`${server.url}?backend=cpu&threads=${threads}`);
  await waitForModel(page);
  await page.getByTestId('finetune-mode').selectOption(mode);
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  if (mode !== 'head') {
    await page.getByTestId('epochs').fill('2');
    await page.getByTestId('epochs').dispatchEvent('change');
  }
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);
  const timings = await page.getByTestId('timings').textContent();
  const head = mode === 'head'
    ? parseSafetensors((await download(page, 'export-head', 'head.safetensors', `head-${threads}t.safetensors`)).bytes)
    : null;
  const runs = await page.getByTestId('run-charts').evaluateAll((els) => els.map((e) => e.dataset.run));
  await context.close();
  return { status, timings, head, logs, runs };
}

test('two threads embed what one thread embeds, and the results say two threads did', { timeout: 600_000 }, async () => {
  const one = await trainSample(1);
  const two = await trainSample(2);
  assert.doesNotMatch(one.timings, /threads/, one.timings);
  assert.match(two.timings, /images\/s on 2 threads\)/, `${two.timings}\n${two.logs.join('\n')}`);
  assert.equal(two.status.epoch, one.status.epoch);
  assert.equal(two.status.valLoss, one.status.valLoss);
  const names = Object.keys(one.head.header).filter((k) => k !== '__metadata__');
  assert.ok(names.length > 0);
  for (const name of names) {
    assert.deepEqual(two.head.f32(name), one.head.f32(name), `${name} is the same from both`);
  }
});

test('Auto\'s LoRA run on two threads trains exactly what one thread trains, and says so', { timeout: 1_200_000 }, async () => {
  const one = await trainSample(1, 'auto');
  const two = await trainSample(2, 'auto');
  for (const run of [one, two]) assert.equal(run.status.state, 'done', `${run.status.text}\n${run.logs.join('\n')}`);
  assert.deepEqual(two.runs, one.runs);
  assert.ok(one.runs.includes('lora'), `the LoRA run charted: ${one.runs}`);
  assert.doesNotMatch(one.timings, /Training: [\d.]+ s on/, one.timings);
  assert.match(two.timings, /Training: [\d.]+ s on 2 threads\./, `${two.timings}\n${two.logs.join('\n')}`);
  assert.equal(two.status.epoch, one.status.epoch, 'the same epochs');
  assert.ok(Number.isFinite(Number(one.status.valLoss)), one.status.valLoss);
  assert.equal(two.status.valLoss, one.status.valLoss, 'the same kept validation loss, to the last digit');
  assert.equal(two.status.valAccuracy, one.status.valAccuracy);
});
