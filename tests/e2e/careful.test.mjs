// What a careful user trips over (issue 28), one test per item fixed, on the CPU path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { serveDist, launch, waitForTraining, waitForModel, waitForImages, lettersSubset } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

test('1. Train waits until a dropped folder is read, and says why', { timeout: 300_000 }, async () => {
  const classes = 8;
  const { dir, count: total } = await lettersSubset(classes, 20);
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('finetune-mode').selectOption('head');
  // Every 20 ms while the folder is read: the images counted so far, whether Train can be pressed, the hint.
  await page.evaluate(() => {
    window.__seen = [];
    const tick = () => {
      const wait = document.querySelector('[data-testid=train-wait]');
      window.__seen.push({
        images: Number(document.querySelector('[data-testid=dataset-summary]')?.dataset.images ?? 0),
        disabled: document.querySelector('[data-testid=train-button]').disabled,
        hint: wait && !wait.hidden ? wait.textContent : '',
      });
      if (!window.__stop) setTimeout(tick, 20);
    };
    tick();
  });
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, total);
  const seen = await page.evaluate(() => { window.__stop = true; return window.__seen; });
  const during = seen.filter((s) => s.images > 0 && s.images < total);
  assert.ok(during.length >= 3, `the reading was seen only ${during.length} times`);
  const clickable = during.filter((s) => !s.disabled);
  assert.deepEqual(clickable.slice(0, 3), [], `Train could be pressed with ${clickable[0]?.images} of ${total} images read`);
  assert.ok(during.some((s) => new RegExp(`Train waits until every image is read: \\d+ / ${total}\\.`).test(s.hint)),
    `no hint while reading: ${JSON.stringify(during.slice(0, 3))}`);
  // Once read: Train works, the hint is gone, and the model has every class.
  assert.equal(await page.getByTestId('train-button').isDisabled(), false);
  assert.equal(await page.getByTestId('train-wait').isHidden(), true);
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', status.text);
  const labels = await page.locator('[data-testid=confusion-matrix] thead th').count();
  assert.equal(labels, classes + 2, 'every class is in the trained model');
  await page.context().close();
  await rm(dir, { recursive: true, force: true });
});
