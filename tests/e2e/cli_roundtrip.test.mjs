// The page and the native command share the project file (issue 27): a project `ajuste train` wrote opens in the
// page with its trained model and charts, and a project the page saved trains in `ajuste`. The command is the
// release build of this tree (scripts/test.sh builds it before this suite).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  serveDist, launch, waitForModel, waitForImages, lettersSubset, download, ROOT, RESULTS,
} from './helpers.mjs';

const AJUSTE = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'release', 'ajuste');
const run = promisify(execFile);

let server, browser, work;
before(async () => {
  server = await serveDist();
  browser = await launch();
  work = await mkdtemp(join(tmpdir(), 'ajuste-roundtrip-'));
});
after(async () => {
  await browser?.close();
  server?.close();
  await rm(work, { recursive: true, force: true });
});

test('a project ajuste train wrote opens in the page with its model and charts', { timeout: 300_000 }, async () => {
  const { dir, count } = await lettersSubset(3, 8);
  const out = join(work, 'cli-model');
  const { stderr } = await run(AJUSTE, ['train', dir, '--mode', 'head', '--epochs', '4', '--device', 'cpu', '--out', out]);
  assert.match(stderr, new RegExp(`Training ${count} images in 3 classes`));

  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('open-project').setInputFiles(join(out, 'project.ajuste'));
  await page.waitForFunction(() => /Opened project\.ajuste/.test(document.body.textContent));
  await waitForImages(page, count);
  const charts = page.getByTestId('run-charts');
  await charts.first().waitFor();
  assert.equal(await charts.count(), 1);
  assert.equal(await charts.getAttribute('data-run'), 'head');
  assert.equal(await charts.getAttribute('data-epochs'), '4', 'the command’s four epochs are charted');
  assert.equal(await page.locator('[data-testid=confusion-matrix] thead th').count(), 3 + 2, 'its three classes');
  await page.locator('[data-testid=run-charts]').screenshot({ path: join(RESULTS, 'roundtrip-cli-in-page.png') });
  await page.context().close();
  await rm(dir, { recursive: true, force: true });
});

test('a project the page saved trains in ajuste, with its images and options', { timeout: 300_000 }, async () => {
  const { dir, count } = await lettersSubset(3, 6);
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, count);
  await page.getByTestId('finetune-mode').selectOption('head');
  const saved = await download(page, 'save-project', 'project.ajuste', 'roundtrip-page.ajuste');
  await page.context().close();

  const out = join(work, 'from-page');
  const { stderr } = await run(AJUSTE, ['train', saved.path, '--epochs', '2', '--device', 'cpu', '--out', out]);
  assert.match(stderr, new RegExp(`Training ${count} images in 3 classes on the CPU .*, mode head`), stderr);
  const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
  assert.equal(config.training_options.finetune.kind, 'head', 'the mode chosen in the page');
  assert.equal(config.training_options.epochs, 2);
  const labels = (await readFile(join(out, 'labels.txt'), 'utf8')).trim().split('\n').map((l) => l.split(' ')[1]);
  assert.deepEqual(labels, config.labels);
  assert.equal(labels.length, 3);
  await rm(dir, { recursive: true, force: true });
});
