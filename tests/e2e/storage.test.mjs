// Storage that survives a reload at any moment (issue 11): every image comes back after a reload with its
// thumbnails, the storage line shows used space and quota, and a reload during embedding keeps the features
// already computed, which the next training does not compute again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { serveDist, launch, makeDataset, waitForTraining, waitForModel, waitForImages, waitForProgress, SAMPLE,
  pageLogs } from './helpers.mjs';

let server, browser;

before(async () => {
  server = await serveDist();
  browser = await launch();
});
after(async () => { await browser?.close(); server?.close(); });

const CLASSES3 = {
  animal: join(SAMPLE, 'animal'),
  monument: join(SAMPLE, 'monument'),
  tool: join(SAMPLE, 'tool'),
};

async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  const logs = pageLogs(page);
  // Every embedding status line the page shows, so the test can tell what a run computed.
  await page.addInitScript(() => {
    window.__statuses = new Set();
    setInterval(() => {
      const s = document.querySelector('[data-testid=training-status]');
      if (s?.dataset.state === 'embedding') window.__statuses.add(s.textContent);
    }, 20);
  });
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  return { page, logs };
}

/** Waits until the storage line reports a saved index (some usage) naming at least `minImages` images, with at
 * least `minFeatures` feature rows, and returns its data attributes. */
async function storageUse(page, minFeatures = 0, minImages = 0) {
  await waitForProgress(page, 'the storage usage line', {
    done: ([features, images]) => {
      const d = document.querySelector('[data-testid=storage-usage]')?.dataset;
      return Number(d?.usage) > 0 && Number(d?.quota) > 0 && Number(d?.features) >= features
        && Number(d?.images) >= images;
    },
    progress: () => document.querySelector('[data-testid=storage-usage]')?.outerHTML,
    arg: [minFeatures, minImages],
    stallMs: 60_000,
  });
  return page.getByTestId('storage-usage').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
}

test('every image comes back after a reload, with its thumbnails; a rename survives too', { timeout: 600_000 }, async () => {
  const dir = await makeDataset('store', CLASSES3, 5);
  const { page, logs } = await openPage();
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, 15);
  await page.getByTestId('class-name').first().fill('animals');
  await page.getByTestId('class-name').first().dispatchEvent('change');
  const before = await storageUse(page, 0, 15);
  assert.match(before.text, /Stored in this browser: 15 images, .* of /);
  // The rename's save rewrites only the index: a moment is enough.
  await new Promise((ok) => setTimeout(ok, 1500));
  await page.reload();
  await waitForModel(page);
  await waitForImages(page, 15);
  const names = await page.getByTestId('class-card').evaluateAll((cards) => cards.map((c) => [c.dataset.class, c.dataset.count]));
  assert.deepEqual(names, [['animals', '5'], ['monument', '5'], ['tool', '5']], logs.join('\n'));
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=class-card] img').length >= 12, null, { timeout: 30_000 });
  assert.match(await page.getByTestId('dataset-notice').textContent(), /Restored from your last visit: 15 images in 3 classes/);
  // The pixels of a restored image are read back from storage when needed (the ImageNet preview).
  await page.locator('.thumb').first().click();
  await page.getByTestId('imagenet-top5').waitFor({ timeout: 60_000 });
  assert.ok(!logs.some((l) => l.startsWith('pageerror')), logs.join('\n'));
});

test('a reload during embedding keeps the features computed; the next run computes only the rest', { timeout: 900_000 }, async () => {
  const dir = await makeDataset('store-embed', CLASSES3, 12);
  const { page, logs } = await openPage();
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, 36);
  // The drop is saved (the index names every image) before the run: the reload below is about features.
  await storageUse(page, 0, 36);
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('train-button').click();
  // Reload once some batches are embedded (each batch's features are stored before its progress shows).
  await waitForProgress(page, 'a few images embedded', {
    done: () => {
      const m = /(\d+) \/ 36 images/.exec(document.querySelector('[data-testid=training-status]')?.textContent ?? '');
      return m && Number(m[1]) >= 8;
    },
    progress: () => document.querySelector('[data-testid=training-status]')?.textContent,
  });
  const embeddedBefore = Number(/(\d+) \/ 36 images/.exec(await page.getByTestId('training-status').textContent())[1]);
  assert.ok(embeddedBefore < 36, 'reloaded before the embedding ended');
  await page.reload();
  await waitForModel(page);
  await waitForImages(page, 36);
  const restored = await storageUse(page, embeddedBefore, 36);
  const kept = Number(restored.features);
  assert.ok(kept >= embeddedBefore && kept < 36, `features kept: ${kept}, embedded before the reload: ${embeddedBefore}`);

  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);
  const seen = await page.evaluate(() => [...window.__statuses]);
  // (0 / 0 is the line shown before the worker's first report.)
  const totals = new Set(seen.map((t) => Number(/\/ (\d+) images/.exec(t)?.[1])).filter((n) => n > 0));
  assert.deepEqual([...totals], [36 - kept], `only the images without features are embedded: ${seen.join(' | ')}`);
  // After the run every image's features are in storage.
  await storageUse(page, 36);
});

test('a drop that would not fit in the browser storage is refused before any file is read', { timeout: 300_000 }, async () => {
  const small = await makeDataset('store-small', CLASSES3, 2);
  const big = await makeDataset('store-big', CLASSES3, 12);
  const { page } = await openPage();
  await page.getByTestId('dataset-input').setInputFiles(small);
  await waitForImages(page, 6);
  const { usage } = await storageUse(page);
  // The browser now reports a quota just 1 MB above what the page uses: 36 more images (~85 kB each) cannot
  // fit. (Chromium's DevTools quota override does not reach navigator.storage.estimate, so the answer is faked.)
  await page.evaluate((quota) => {
    const real = StorageManager.prototype.estimate;
    StorageManager.prototype.estimate = async function () { return { ...(await real.call(this)), quota }; };
  }, Number(usage) + 1e6);
  await page.getByTestId('dataset-input').setInputFiles(big);
  const error = page.getByTestId('dataset-error');
  await error.filter({ hasText: 'Not added' }).waitFor({ timeout: 30_000 });
  assert.match(await error.textContent(), /need about .* MB of browser storage and only .* is free.*Nothing already loaded changed/);
  assert.equal(await page.getByTestId('dataset-summary').getAttribute('data-images'), '6');
});
