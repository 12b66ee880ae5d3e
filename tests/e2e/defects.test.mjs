// Each defect found by trying the page as a new user (issue 9, section 3), one test each, on one page at
// phone width (390 px) with the CPU backend. The tests run in order and share the page: each leaves it as
// the next one expects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { serveDist, launch, makeDataset, waitForTraining, waitForModel, waitForImages, waitForProgress, SAMPLE,
  RESULTS } from './helpers.mjs';

let server, browser, page;
const logs = [];

before(async () => {
  await mkdir(RESULTS, { recursive: true });
  server = await serveDist();
  browser = await launch();
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 390, height: 900 } });
  page = await context.newPage();
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  // These defects are about the head-only path: keep each training to seconds.
  await page.getByTestId('finetune-mode').selectOption('head');
});
after(async () => { await browser?.close(); server?.close(); });

const status = () => page.getByTestId('training-status');
const cardInput = (i) => page.locator('[data-testid=class-card] input[type=text]').nth(i);
const messages = () => page.locator('main').evaluate((m) => [...m.querySelectorAll('[role=status], [role=alert]')]
  .map((e) => e.textContent).join(' | '));

async function setOption(id, value) {
  await page.locator('details.options').evaluate((d) => { d.open = true; });
  await page.locator(`#${id}`).fill(String(value));
  await page.locator(`#${id}`).dispatchEvent('change');
}

async function chartPoints() {
  return page.locator('[data-testid=charts] polyline').first().evaluate((p) => p.getAttribute('points').trim().split(/\s+/).length);
}

const CLASSES = {
  'wild animals': join(SAMPLE, 'animal'),
  'garden tools': join(SAMPLE, 'tool'),
};

test('"Ready to train." only when the dataset can be trained on', async () => {
  assert.equal(await page.getByTestId('dataset-summary').getAttribute('data-images'), '0');
  assert.ok(await page.getByTestId('train-button').isDisabled());
  const text = await status().textContent();
  assert.notEqual(text.trim(), 'Ready to train.', 'says ready with no images');
  assert.match(text, /add images/i, `says what is missing: ${text}`);
});

test('options show the numbers as typed, without float noise', async () => {
  await page.locator('details.options').evaluate((d) => { d.open = true; });
  assert.equal(await page.locator('#opt-lr').inputValue(), '0.001');
  assert.equal(await page.locator('#opt-val').inputValue(), '0.2');
  assert.equal(await page.locator('#opt-wd').inputValue(), '0.0001');
});

test('each option shows only in the modes it applies to (the deeper runs drop the head-only ones)', async () => {
  await page.locator('details.options').evaluate((d) => { d.open = true; });
  const shown = async (id) => (await page.locator(`#${id}`).count()) === 1;
  const mode = page.getByTestId('finetune-mode');
  await mode.selectOption('lora');
  for (const id of ['opt-wd', 'opt-optim', 'opt-hidden']) assert.ok(!await shown(id), `${id} hidden for LoRA`);
  assert.equal(await page.locator('#opt-deep-wd').inputValue(), '0.01', 'the weight decay LoRA trains with');
  assert.ok(await shown('opt-backbone-lr') && await shown('opt-warmup'));
  await mode.selectOption('head');
  for (const id of ['opt-backbone-lr', 'opt-deep-wd', 'opt-warmup']) assert.ok(!await shown(id), `${id} hidden for head only`);
  assert.ok(await shown('opt-wd') && await shown('opt-hidden'));
  await mode.selectOption('auto');
  for (const id of ['opt-wd', 'opt-hidden', 'opt-backbone-lr', 'opt-deep-wd']) assert.ok(await shown(id), `${id} shown for Auto`);
});

test('a small dataset loads', async () => {
  const dir = await makeDataset('defects', CLASSES, 3);
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, 6);
  await waitForProgress(page, 'the Train button to be enabled', {
    done: () => !document.querySelector('[data-testid=train-button]').disabled,
    progress: () => document.querySelector('[data-testid=training-status]')?.textContent,
  });
  assert.equal((await status().textContent()).trim(), 'Ready to train.');
});

test('the epochs help and the epochs error give the same range', async () => {
  const help = await page.locator('#opt-epochs-help').textContent();
  await setOption('opt-epochs', 20000);
  // Shown under the field as it is typed (issue 28 item 7), and Train waits.
  const error = await page.getByTestId('opt-epochs-error').textContent();
  assert.ok(await page.getByTestId('train-button').isDisabled(), 'Train can be pressed with 20000 epochs');
  const [, lo, hi] = help.match(/(\d+)\s*[–-]\s*(\d+)/) ?? [];
  const [, elo, ehi] = error.match(/between (\d+) and (\d+)/) ?? [];
  assert.ok(lo && elo, `help: ${help} / error: ${error}`);
  assert.deepEqual([lo, hi], [elo, ehi], `help: ${help} / error: ${error}`);
});

test('two clicks on Train in one task start one training', async () => {
  await setOption('opt-epochs', 6);
  await setOption('opt-patience', 0);
  await page.evaluate(() => {
    const train = document.querySelector('[data-testid=train-button]');
    train.click();
    train.click();
  });
  const s = await waitForTraining(page);
  assert.equal(s.state, 'done', `${s.text}\n${logs.join('\n')}`);
  assert.equal(s.epoch, '6');
  assert.equal(await chartPoints(), 6, 'the chart has one point per epoch of one run');
});

test('results that no longer match the dataset say so, and downloads match what is shown', async () => {
  const original = await cardInput(1).inputValue();
  await cardInput(1).fill('pliers');
  await cardInput(1).dispatchEvent('change');
  await page.locator('[data-testid=training-status][data-stale=true]').waitFor({ timeout: 10_000 });
  assert.match(await page.locator('main').textContent(), /retrain needed/i, 'a retrain-needed hint');
  const shown = await page.locator('[data-testid=confusion-matrix] thead th').allTextContents();
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-labels').click()]);
  const labels = (await readFile(await dl.path())).toString().trim().split('\n').map((l) => l.replace(/^\d+ /, ''));
  assert.deepEqual(labels, shown.slice(1, -1), 'labels.txt lists the classes of the results on screen');
  await cardInput(1).fill(original);
  await cardInput(1).dispatchEvent('change');
  await page.locator('[data-testid=training-status][data-stale=false]').waitFor({ timeout: 10_000 });
});

test('a refused rename puts the name back in the box', async () => {
  const [first, second] = [await cardInput(0).inputValue(), await cardInput(1).inputValue()];
  await cardInput(0).fill(second);
  await cardInput(0).dispatchEvent('change');
  await page.waitForTimeout(300);
  assert.equal(await cardInput(0).inputValue(), first, 'the box shows the name the class kept');
  assert.match(await messages(), /already a class named/);
});

test('a name that is too long is refused with a word, not cut silently', async () => {
  const first = await cardInput(0).inputValue();
  await cardInput(0).fill('x'.repeat(500));
  await cardInput(0).dispatchEvent('change');
  await page.waitForTimeout(300);
  assert.equal(await cardInput(0).inputValue(), first);
  assert.match(await messages(), /64 characters/, 'says why');
});

test('Stop during embedding keeps the previous results and downloads', async () => {
  const dir = await makeDataset('more', { 'old monuments': join(SAMPLE, 'monument') }, 12);
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, 18);
  // Stop as soon as the page offers it while computing features (a fast machine embeds 12 images quickly).
  await page.evaluate(() => new Promise((ok) => {
    const state = document.querySelector('[data-testid=training-status]');
    const stop = document.querySelector('[data-testid=stop-button]');
    const watch = new MutationObserver(() => {
      if (state.dataset.state === 'embedding' && !stop.disabled) { watch.disconnect(); stop.click(); ok(); }
    });
    watch.observe(document.body, { attributes: true, subtree: true, childList: true });
    document.querySelector('[data-testid=train-button]').click();
  }));
  await waitForProgress(page, 'the run to stop', {
    done: () => document.querySelector('[data-testid=training-status]')?.dataset.state !== 'embedding',
    progress: () => document.querySelector('[data-testid=training-status]')?.textContent,
  });
  // Had Stop not worked, the run would have gone on to train a model with the new class.
  assert.match(await page.getByTestId('training-notice').textContent(), /Stopped while computing features/);
  assert.ok(await page.getByTestId('confusion-matrix').isVisible(), 'the previous results are still shown');
  const shown = await page.locator('[data-testid=confusion-matrix] thead th').allTextContents();
  assert.ok(!shown.includes('old monuments'), `the results are the previous model's: ${shown}`);
  assert.ok(await page.getByTestId('export-labels').isEnabled(), 'and can still be downloaded');
});

test('images dropped during training are taken, and the results then say to retrain', async () => {
  await setOption('opt-epochs', 10000);
  await page.getByTestId('train-button').click();
  await page.locator('[data-testid=training-status][data-state=training]').waitFor({ timeout: 300_000 });
  const folder = join(SAMPLE, 'tool');
  const files = (await readdir(folder)).filter((f) => f.endsWith('.jpg')).sort().slice(3, 5);
  const payload = await Promise.all(files.map(async (f) => [f, (await readFile(join(folder, f))).toString('base64')]));
  const before = Number(await page.locator('[data-testid=class-card]').nth(0).getAttribute('data-count'));
  await page.locator('[data-testid=class-card]').nth(0).evaluate((card, files) => {
    const dt = new DataTransfer();
    for (const [name, b64] of files) {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], name, { type: 'image/jpeg' }));
    }
    card.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, payload);
  await waitForProgress(page, 'the dropped images in the first class', {
    done: (n) => Number(document.querySelector('[data-testid=class-card]').dataset.count) === n,
    progress: () => document.querySelector('main').textContent.slice(0, 400),
    arg: before + 2, stallMs: 30_000,
  });
  await page.getByTestId('stop-button').click();
  const s = await waitForTraining(page);
  assert.equal(s.state, 'done', s.text);
  assert.equal(s.stale, 'true', 'trained on the images it started with: retrain needed');
});

test('at 390 px wide the page does not scroll sideways', async () => {
  if (!(await page.getByTestId('confusion-matrix').isVisible())) {
    // Not left by the tests before (run alone, or they failed): train, so there is a confusion table to lay out.
    if ((await page.getByTestId('dataset-summary').getAttribute('data-images')) === '0') {
      await page.getByTestId('dataset-input').setInputFiles(await makeDataset('phone', CLASSES, 3));
      await waitForImages(page, 6);
    }
    await setOption('opt-epochs', 6);
    await page.getByTestId('train-button').click();
    await waitForTraining(page);
  }
  await page.getByTestId('confusion-matrix').waitFor();
  await page.screenshot({ path: join(RESULTS, 'phone-width.png'), fullPage: true });
  const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(scroll <= client, `page is ${scroll} px wide in a ${client} px window`);
});

test('with a validation fraction of 0 the charts show training figures only, and say so', async () => {
  if ((await page.getByTestId('dataset-summary').getAttribute('data-images')) === '0') {
    await page.getByTestId('dataset-input').setInputFiles(await makeDataset('no-val', CLASSES, 3));
    await waitForImages(page, 6);
  }
  await setOption('opt-val', 0);
  await setOption('opt-epochs', 3);
  await page.getByTestId('train-button').click();
  const s = await waitForTraining(page);
  assert.equal(s.state, 'done', s.text);
  const charts = page.getByTestId('run-charts');
  assert.equal(await charts.first().getAttribute('data-held-out'), 'false');
  await page.getByTestId('no-validation').first().waitFor();
  const legend = await charts.first().textContent();
  assert.ok(!legend.includes('validation loss') && !legend.includes('validation accuracy'), legend);
  assert.ok(legend.includes('training loss'), legend);
  await setOption('opt-val', 0.2);
});
