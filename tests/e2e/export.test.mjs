// Export formats and Open model: train the sample briefly, download model.onnx (checked here as an ONNX
// ModelProto; its logits are checked natively against tract in tests/onnx.rs) and the zip bundle, then open the
// downloaded model.safetensors in a fresh browser profile and see it kept; a malformed file is refused with a
// message and changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { serveDist, launch, parseSafetensors, waitForTraining, waitForModel, waitForImages, RESULTS, pageLogs,
  download } from './helpers.mjs';

let server, browser;

before(async () => {
  await mkdir(RESULTS, { recursive: true });
  server = await serveDist();
  browser = await launch();
});
after(async () => { await browser?.close(); server?.close(); });

async function openPage() {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  const logs = pageLogs(page);
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  return { page, logs, context };
}


/** The top-level fields of a protobuf message: field number → list of values (numbers or byte slices). */
function protobufFields(buf) {
  const fields = {};
  let i = 0;
  const varint = () => {
    let value = 0n, shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('varint past the end');
      const b = buf[i++];
      value |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return value;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const [field, wire] = [key >> 3, key & 7];
    let value;
    if (wire === 0) value = Number(varint());
    else if (wire === 2) {
      const n = Number(varint());
      if (i + n > buf.length) throw new Error(`field ${field}: ${n} bytes past the end`);
      value = buf.subarray(i, i + n); i += n;
    } else throw new Error(`field ${field}: unexpected wire type ${wire}`);
    (fields[field] ??= []).push(value);
  }
  return fields;
}

/** The names of a zip's entries, from its central directory. */
function zipNames(buf) {
  const end = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(end >= 0, 'no end of central directory');
  const count = buf.readUInt16LE(end + 10);
  let at = buf.readUInt32LE(end + 16);
  const names = [];
  for (let k = 0; k < count; k++) {
    assert.equal(buf.readUInt32LE(at), 0x02014b50, 'central directory entry');
    const [n, extra, comment] = [buf.readUInt16LE(at + 28), buf.readUInt16LE(at + 30), buf.readUInt16LE(at + 32)];
    names.push(buf.subarray(at + 46, at + 46 + n).toString('utf8'));
    at += 46 + n + extra + comment;
  }
  return names;
}

test('Export: model.onnx and the bundle download; Open model keeps a downloaded model; a bad file is refused', { timeout: 1_800_000 }, async () => {
  const { page, logs } = await openPage();
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);

  // model.onnx: a ModelProto with IR version 7, our producer, a graph with the weights, opset 13 and the labels.
  const { bytes: onnx } = await download(page, 'export-onnx', 'model.onnx');
  // The backbone's 3.4 M weights as raw float32, BN folded away.
  assert.ok(onnx.length > 13_000_000, `${onnx.length} bytes`);
  const model = protobufFields(onnx);
  assert.deepEqual(model[1], [7]);
  assert.equal(Buffer.from(model[2][0]).toString(), 'ajuste');
  assert.equal(model[7].length, 1);
  const graph = protobufFields(model[7][0]);
  assert.ok(graph[1].length > 60, `${graph[1].length} nodes`);
  assert.ok(graph[5].length > 100, `${graph[5].length} initializers`);
  const opset = protobufFields(model[8][0]);
  assert.deepEqual(opset[2], [13]);
  const props = Object.fromEntries(model[14].map((e) => {
    const f = protobufFields(e);
    return [Buffer.from(f[1][0]).toString(), Buffer.from(f[2][0]).toString()];
  }));
  assert.deepEqual(JSON.parse(props.labels), ['animal', 'monument', 'tool']);
  const outputs = graph[12].map((v) => Buffer.from(protobufFields(v)[1][0]).toString());
  assert.deepEqual(outputs, ['logits', 'embedding']);

  await page.locator('.snippet').first().evaluate((d) => { d.open = true; });
  await page.getByTestId('export-panel').screenshot({ path: join(RESULTS, 'export-panel.png') });

  // The bundle: every format and the model card.
  const { bytes: zip } = await download(page, 'export-bundle', 'ajuste-model.zip');
  assert.equal(zip.readUInt32LE(0), 0x04034b50, 'a zip');
  assert.deepEqual(zipNames(zip), ['model.safetensors', 'model.onnx', 'config.json', 'labels.txt', 'README.md']);

  // Open model, in a fresh profile: the downloaded model.safetensors becomes the kept model.
  const { bytes: weights, path } = await download(page, 'export-button', 'model.safetensors');
  const exported = parseSafetensors(weights);
  const fresh = await openPage();
  await fresh.page.getByTestId('open-model').setInputFiles(path);
  await fresh.page.getByTestId('opened-model').waitFor({ timeout: 120_000 });
  assert.match(await fresh.page.getByTestId('opened-model').textContent(), /3 classes \(animal, monument, tool\)/);
  assert.match(await fresh.page.getByTestId('open-model-status').textContent(), /Opened model\.safetensors/);
  assert.equal(await fresh.page.getByTestId('export-onnx').isEnabled(), true);
  // Exported again from the opened model: the same tensors (head only: the backbone is the shipped one).
  const again = parseSafetensors((await download(fresh.page, 'export-button', 'model.safetensors')).bytes);
  for (const name of ['classifier.weight', 'classifier.bias', 'blocks.15.project.conv.weight', 'head.bn.running_var']) {
    assert.deepEqual(again.f32(name), exported.f32(name), name);
  }

  // A malformed file: refused with a message naming it and the problem; the opened model stays.
  await fresh.page.getByTestId('open-model').setInputFiles({
    name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not a model at all'),
  });
  await fresh.page.getByTestId('open-model-error').filter({ hasText: 'broken.safetensors' }).waitFor({ timeout: 30_000 });
  // Plain words first, the format's terms after (issue 28 item 10).
  assert.match(await fresh.page.getByTestId('open-model-error').textContent(),
    /it is not a whole model file \(damaged, cut short, or another kind of file\): .*header size/);
  assert.match(await fresh.page.getByTestId('opened-model').textContent(), /animal, monument, tool/);

  // Continue training the opened model on the sample: its head goes on from where it was, head only.
  await fresh.page.getByTestId('sample-button').click();
  await waitForImages(fresh.page, 36);
  await fresh.page.getByTestId('epochs').fill('2');
  await fresh.page.getByTestId('epochs').dispatchEvent('change');
  await fresh.page.getByTestId('continue-training').click();
  const continued = await waitForTraining(fresh.page);
  assert.equal(continued.state, 'done', continued.text);
  assert.match(await fresh.page.getByTestId('auto-explanation').textContent(), /Continued from the opened model/);
  assert.equal(await fresh.page.getByTestId('opened-model').count(), 0, 'a model trained here now');
  assert.equal(await fresh.page.getByTestId('finetune-mode').inputValue(), 'head');
  assert.equal(await fresh.page.getByTestId('continue-training').count(), 0);
  await fresh.context.close();
});
