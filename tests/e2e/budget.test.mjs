// The time budget of a deeper run (issue 31): on the sample with a budget of 6 s, LoRA's 50 epochs are cut to
// what fits, the time left is estimated only once steps are timed and never passes the budget, and the page
// says what was done and which epoch it kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, waitForTraining, waitForModel, waitForImages, chooseLora } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

test('a tiny time budget cuts LoRA short, keeps its best epoch and says so', { timeout: 600_000 }, async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  assert.equal(await page.getByTestId('budget').inputValue(), '10', 'a 10-minute budget by default');
  await chooseLora(page, 50);
  await page.getByTestId('budget').fill('0.1');
  await page.getByTestId('budget').dispatchEvent('change');
  await page.evaluate(() => {
    window.__texts = new Set();
    const status = document.querySelector('[data-testid=training-status]');
    new MutationObserver(() => window.__texts.add(status.textContent))
      .observe(status, { childList: true, characterData: true, subtree: true });
  });
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', status.text);
  assert.equal(status.mode, 'lora');
  const texts = await page.evaluate(() => [...window.__texts]);
  const steps = texts.filter((t) => t.includes(', step '));
  assert.ok(steps.some((t) => t.includes('estimating the time left…')), `no estimate pending: ${steps.slice(0, 3)}`);
  assert.ok(steps.every((t) => t.includes('; time budget 6 s)')), `the budget not shown: ${steps.slice(0, 3)}`);
  for (const t of steps) {
    const left = t.match(/about (\d+) s left/);
    assert.ok(!left || Number(left[1]) <= 6, `time left past the budget: ${t}`);
  }
  assert.match(status.text, /time budget/, status.text);
  const epochs = Number(status.epoch);
  assert.ok(epochs >= 1 && epochs < 50, `${epochs} epochs`);
  const summary = page.getByTestId('deep-summary');
  const data = await summary.evaluate((el) => ({ ...el.dataset, text: el.textContent }));
  assert.equal(data.reason, 'budget', data.text);
  assert.equal(data.budgetSeconds, '6');
  assert.match(data.text, /^LoRA: \d+ steps in \d+ s, best at step \d+, cut to the 6 s time budget\.$/, data.text);
  // One step per epoch here (28 training images, batches of 32): the kept epoch is the best step.
  const kept = Number(status.text.match(/from its best epoch (\d+) of \d+/)[1]);
  assert.equal(Number(data.bestStep), kept, `${data.text} / ${status.text}`);
  assert.ok(Number(data.steps) >= kept && Number(data.steps) === epochs, data.text);
  await page.context().close();
});
