// TFLite exports (issue 29, part 2): train the sample briefly, download model.tflite (written in the page) and
// model_int8.tflite (calibrated in a worker on the training images, with its progress shown, then written in the
// page). Each is checked here as a TFLite FlatBuffer with its labels file packed after it; their numbers are
// checked natively (tests/tflite.rs: tract and a reference integer run) and with the TFLite interpreter and
// MediaPipe (scripts/check_tflite.py).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { serveDist, launch, waitForTraining, waitForModel, waitForImages, RESULTS, pageLogs, download } from './helpers.mjs';

let server, browser;

before(async () => {
  await mkdir(RESULTS, { recursive: true });
  server = await serveDist();
  browser = await launch();
});
after(async () => { await browser?.close(); server?.close(); });

/** The stored (uncompressed) file `name` of the zip at the end of `buf`. */
function storedFile(buf, name) {
  const end = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(end >= 0, 'no zip after the model');
  let at = buf.readUInt32LE(end + 16);
  for (let k = 0; k < buf.readUInt16LE(end + 10); k++) {
    const [n, extra, comment] = [buf.readUInt16LE(at + 28), buf.readUInt16LE(at + 30), buf.readUInt16LE(at + 32)];
    if (buf.subarray(at + 46, at + 46 + n).toString('utf8') === name) {
      assert.equal(buf.readUInt16LE(at + 10), 0, `${name} stored, as MediaPipe reads it`);
      const size = buf.readUInt32LE(at + 24);
      const local = buf.readUInt32LE(at + 42);
      const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
      return buf.subarray(start, start + size).toString('utf8');
    }
    at += 46 + n + extra + comment;
  }
  throw new Error(`no ${name} in the zip`);
}

/** The model's FlatBuffer identifier and the labels file packed after it. */
function checkTflite(bytes) {
  assert.equal(bytes.subarray(4, 8).toString(), 'TFL3', 'a TFLite FlatBuffer');
  assert.equal(storedFile(bytes, 'labels.txt'), 'animal\nmonument\ntool\n');
}

test('Export: model.tflite and model_int8.tflite (calibrated in a worker, with progress)', { timeout: 1_800_000 }, async () => {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  const logs = pageLogs(page);
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);

  const { bytes: float } = await download(page, 'export-tflite', 'model.tflite');
  checkTflite(float);
  // The backbone's 3.4 M weights as float32, BN folded away.
  assert.ok(float.length > 13_000_000, `${float.length} bytes`);

  // int8: the button waits while the worker calibrates; the progress shows meanwhile.
  const started = Date.now();
  const downloaded = page.waitForEvent('download', { timeout: 600_000 });
  await page.getByTestId('export-tflite-int8').click();
  await page.getByTestId('tflite-int8-progress').waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('export-tflite-int8').isDisabled(), true, 'one calibration at a time');
  await page.getByTestId('export-panel').screenshot({ path: join(RESULTS, 'export-tflite.png') });
  const dl = await downloaded;
  assert.equal(dl.suggestedFilename(), 'model_int8.tflite');
  const path = join(RESULTS, 'model_int8.tflite');
  await dl.saveAs(path);
  const int8 = await (await import('node:fs/promises')).readFile(path);
  const seconds = (Date.now() - started) / 1000;
  checkTflite(int8);
  // int8 weights: about a quarter of the float model.
  assert.ok(int8.length * 3 < float.length, `${int8.length} vs ${float.length} bytes`);
  await page.getByTestId('tflite-int8-progress').waitFor({ state: 'detached', timeout: 30_000 });
  assert.equal((await page.getByTestId('results-error').textContent()).trim(), '', 'no export error');
  console.log(`model.tflite ${float.length} bytes; model_int8.tflite ${int8.length} bytes, ${seconds.toFixed(1)} s from click to download (CPU)`);
  await context.close();
});
