// The CPU embedding pool (src/web/pool.rs, issue 12): with `?threads=2` the training worker shares each batch
// with a helper worker, says so in the results, and trains exactly what one thread trains: the features of
// every image are the same, in the same order, so the head and its validation losses are identical.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, waitForTraining, waitForModel, waitForImages, pageLogs, download,
  parseSafetensors } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

async function trainSample(threads) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const logs = pageLogs(page);
  await page.goto(`${server.url}?backend=cpu&threads=${threads}`);
  await waitForModel(page);
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);
  const timings = await page.getByTestId('timings').textContent();
  const head = parseSafetensors((await download(page, 'export-head', 'head.safetensors', `head-${threads}t.safetensors`)).bytes);
  await context.close();
  return { status, timings, head, logs };
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
