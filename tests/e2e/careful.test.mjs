// What a careful user trips over (issue 28), one test per item fixed, on the CPU path. Tests 6–10 share one page:
// a small head-only run, then Try it, the results and the options on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  serveDist, launch, waitForTraining, waitForModel, waitForImages, lettersSubset, makeDataset, download, RESULTS, SAMPLE,
} from './helpers.mjs';

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

/** Samples, every 20 ms until `window.__stop`, the status line, the focused control's test id and the stage. */
async function sample(page) {
  await page.evaluate(() => {
    window.__stop = false;
    window.__samples = [];
    const tick = () => {
      const status = document.querySelector('[data-testid=training-status]');
      window.__samples.push({
        t: performance.now(),
        state: status.dataset.state,
        text: status.textContent,
        focus: document.activeElement?.dataset?.testid ?? document.activeElement?.tagName,
      });
      if (!window.__stop) setTimeout(tick, 20);
    };
    tick();
  });
}

const shared = {};

test('6. The time left is estimated from the measured rate, and the run does not start at "0 / 0 images"', { timeout: 300_000 }, async () => {
  const { dir, count } = await lettersSubset(3, 20);
  const page = await (await browser.newContext()).newPage();
  Object.assign(shared, { page, dir, count });
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.locator('details.options').evaluate((d) => { d.open = true; });
  await page.getByTestId('dataset-input').setInputFiles(dir);
  await waitForImages(page, count);
  await sample(page);
  // Started from the keyboard (test 10 checks where the focus goes).
  await page.getByTestId('train-button').focus();
  await page.keyboard.press('Enter');
  const status = await waitForTraining(page);
  const samples = await page.evaluate(() => { window.__stop = true; return window.__samples; });
  shared.samples = samples;
  // Where the focus went once Stop was disabled (test 10 checks it).
  await page.waitForFunction(() => document.activeElement?.dataset?.testid === 'train-button', null, { timeout: 2000 }).catch(() => {});
  shared.focusAfter = await page.evaluate(() => document.activeElement?.dataset?.testid ?? document.activeElement?.tagName);
  assert.equal(status.state, 'done', status.text);
  const running = samples.filter((s) => s.state === 'embedding' || s.state === 'training');
  assert.ok(running.length > 5, `the run was seen ${running.length} times`);
  for (const s of running) {
    assert.doesNotMatch(s.text, /0 \/ 0 images|\(0\.0 images\/s/, 'a rate or a count before anything was measured');
  }
  const embedding = running.filter((s) => s.text.startsWith('Computing features'));
  const first = embedding.find((s) => /images \(/.test(s.text));
  assert.match(first?.text ?? '', /estimating the time left…/, 'the first measured batch carries the warm-up: no estimate yet');
  // Each estimate against the time the features really took from then.
  const end = samples.find((s, i) => i > 0 && !samples[i].text.startsWith('Computing features') && samples[i - 1].text.startsWith('Computing features'))?.t;
  const estimates = embedding.map((s) => ({ s, left: s.text.match(/about (\d+) s left/) })).filter((e) => e.left);
  assert.ok(estimates.length > 0, `no estimate: ${embedding.map((s) => s.text).slice(-3).join(' | ')}`);
  for (const { s, left } of estimates) {
    const actual = (end - s.t) / 1000;
    assert.ok(Number(left[1]) <= 3 * actual + 3, `said ${left[1]} s left, the features took ${actual.toFixed(1)} s more`);
  }
  const epochs = running.filter((s) => s.text.startsWith('Training the new head'));
  assert.ok(epochs.every((s) => /estimating the time left…|at most about \d+ s left|epoch (\d+) \/ \1$/.test(s.text)),
    epochs.map((s) => s.text).slice(0, 4).join(' | '));
});

test('7. Options are checked as they are typed, next to the field, in its words', { timeout: 120_000 }, async () => {
  const page = shared.page;
  const lr = page.locator('#opt-lr');
  const train = page.getByTestId('train-button');
  for (const text of ['abc', '1e']) {
    await lr.fill(text);
    assert.equal(await page.getByTestId('opt-lr-error').textContent(), `Learning rate: “${text}” is not a number.`);
    assert.equal(await lr.getAttribute('aria-invalid'), 'true');
    assert.equal(await lr.inputValue(), text, 'what was typed stays in sight');
    assert.ok(await train.isDisabled(), `Train can be pressed with “${text}” as the learning rate`);
    assert.equal(await page.getByTestId('train-wait').textContent(), `Train waits for the options: Learning rate: “${text}” is not a number.`);
    if (text === 'abc') await page.locator('details.options').screenshot({ path: join(RESULTS, 'careful-options.png') });
    await lr.dispatchEvent('change');
    assert.equal(await lr.inputValue(), text, 'leaving the box keeps text that is not a number');
  }
  await lr.fill('5');
  assert.equal(await page.getByTestId('opt-lr-error').textContent(), 'Learning rate must be above 0 and at most 1 (got 5).');
  assert.ok(await train.isDisabled());
  // Reset to defaults clears the value and its problem.
  await page.getByRole('button', { name: 'Reset to defaults' }).click();
  assert.equal(await lr.inputValue(), '0.001');
  assert.equal(await page.getByTestId('opt-lr-error').textContent(), '');
  assert.equal(await lr.getAttribute('aria-invalid'), null);
  assert.equal(await train.isDisabled(), false, 'Train works again after the reset');
  assert.equal(await page.getByTestId('training-status').getAttribute('data-state'), 'done', 'the trained model stays');
  // Typing a number is read at once, without rewriting the box under the caret.
  await lr.pressSequentially('0', { delay: 10 });
  await lr.fill('');
  await lr.pressSequentially('0.002', { delay: 10 });
  assert.equal(await lr.inputValue(), '0.002');
  assert.equal(await page.getByTestId('opt-lr-error').textContent(), '');
  // A decimal comma reads as a point (phones in many languages offer only the comma).
  await lr.fill('0,003');
  assert.equal(await page.getByTestId('opt-lr-error').textContent(), '');
  await lr.dispatchEvent('change');
  assert.equal(await lr.inputValue(), '0.003');
  // A count takes whole numbers of 0 or more.
  await page.locator('#opt-patience').fill('-3');
  assert.equal(await page.getByTestId('opt-patience-error').textContent(),
    'Early-stopping patience: “-3” is not a whole number of 0 or more.');
  await page.getByRole('button', { name: 'Reset to defaults' }).click();
  // A field hidden with its problem takes the problem with it: nothing unseen keeps Train waiting.
  await page.locator('#opt-hidden').fill('64');
  await page.locator('#opt-dropout').fill('abc');
  assert.ok(await train.isDisabled());
  await page.locator('#opt-hidden').fill('0');
  assert.equal(await page.locator('#opt-dropout').count(), 0);
  assert.equal(await train.isDisabled(), false, 'the hidden dropout field still keeps Train waiting');
  // A LoRA rank of 0 is the rank's problem: nothing about an alpha the page does not show.
  await page.getByTestId('finetune-mode').selectOption('lora');
  await page.getByTestId('lora-rank').fill('0');
  assert.equal(await page.getByTestId('lora-rank-error').textContent(), 'LoRA rank must be between 1 and 256 (got 0).');
  assert.doesNotMatch(await page.locator('section[aria-labelledby=train-title]').textContent(), /alpha/i);
  await page.getByTestId('lora-rank').fill('8');
  assert.equal(await page.getByTestId('lora-rank-error').textContent(), '');
  await page.getByRole('button', { name: 'Reset to defaults' }).click();
  await page.getByTestId('finetune-mode').selectOption('head');
});

test('9. Try it shows the image it answered, and an error replaces the old answer', { timeout: 120_000 }, async () => {
  const page = shared.page;
  const letter = join(shared.dir, 'A', (await readdir(join(shared.dir, 'A'))).sort()[0]);
  await page.getByTestId('try-input').setInputFiles(letter);
  await page.waitForFunction(() => document.querySelector('[data-testid=try-result]')?.dataset.source === 'file');
  const name = letter.split('/').pop();
  assert.equal(await page.getByTestId('try-name').textContent(), `Answer for ${name}:`);
  const src = await page.getByTestId('try-image').getAttribute('src');
  assert.match(src, /^blob:/);
  assert.ok(await page.getByTestId('try-image').evaluate((img) => img.complete && img.naturalWidth > 0), 'the preview shows');
  await page.locator('[data-testid=try-result]').screenshot({ path: join(RESULTS, 'careful-try.png') });
  // Not an image: the error names it, and no answer of the previous image stays beside it.
  const bad = join(RESULTS, 'careful-not-an-image.png');
  await writeFile(bad, 'this is text, not a picture');
  await page.getByTestId('try-input').setInputFiles(bad);
  await page.waitForFunction(() => document.querySelector('[data-testid=try-error]')?.textContent);
  assert.match(await page.getByTestId('try-error').textContent(), /^Could not classify careful-not-an-image\.png: /);
  assert.ok(await page.getByTestId('try-result').isHidden(), 'the old answer is gone');
  assert.equal(await page.getByTestId('try-image').count(), 0);
});

test('10. Smaller: the kept epoch beside the epochs run, file names of held-out images, the focus (Resume: resume.test.mjs)', { timeout: 120_000 }, async () => {
  const { page, samples } = shared;
  const status = await page.getByTestId('training-status').textContent();
  const m = status.match(/Kept the head from its best epoch (\d+) of (\d+)/);
  assert.ok(m && Number(m[1]) <= Number(m[2]), status);
  // The focus: on Stop while the run goes (Train is disabled), back on Train after.
  const during = samples.filter((s) => s.state === 'training' || s.state === 'embedding').map((s) => s.focus);
  const moved = during.indexOf('stop-button');
  assert.ok(moved >= 0 && moved <= 3 && during.slice(moved).every((f) => f === 'stop-button'), `focus during the run: ${during.slice(0, 8)}`);
  assert.equal(shared.focusAfter, 'train-button', 'the focus after the run');
  // Every held-out image of a confusion cell is listed with its file name.
  const cells = page.getByTestId('confusion-cell');
  const counts = (await cells.allTextContents()).map(Number);
  const pick = counts.findIndex((n) => n > 0);
  await cells.nth(pick).click();
  const files = await page.getByTestId('mistake-file').allTextContents();
  assert.equal(files.length, counts[pick]);
  const truth = await page.locator('[data-testid=mistakes] li').first().getAttribute('data-truth');
  const names = await readdir(join(shared.dir, truth));
  assert.ok(files.every((f) => names.includes(f)), `${files} not among ${names}`);
  await page.context().close();
});

test('8. Open project asks before replacing unsaved work', { timeout: 300_000 }, async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('dataset-input').setInputFiles(shared.dir);
  await waitForImages(page, shared.count);
  const saved = await download(page, 'save-project', 'project.ajuste', 'careful-project.ajuste');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset?.testid), 'save-project',
    'the focus stays on Save project while and after it saves (item 10)');
  // Just saved: opening replaces nothing unsaved, so it does not ask.
  await page.getByTestId('open-project').setInputFiles(saved.path);
  await page.waitForFunction(() => /Opened careful-project\.ajuste/.test(document.body.textContent));
  assert.equal(await page.getByTestId('project-replace').count(), 0);
  // Two more images: now there is work no project file holds.
  const extra = await makeDataset('careful-extra8', { monument: join(SAMPLE, 'monument') }, 2);
  await page.getByTestId('dataset-input').setInputFiles(extra);
  await waitForImages(page, shared.count + 2);
  await page.getByTestId('open-project').setInputFiles(saved.path);
  const question = page.getByTestId('project-replace');
  await question.waitFor();
  assert.match(await question.textContent(), new RegExp(`Opening careful-project\\.ajuste replaces the ${shared.count + 2} images here, which are not saved in a project file`));
  assert.equal(await page.evaluate(() => document.activeElement?.dataset?.testid), 'project-replace-cancel', 'the focus is on the safe choice');
  await page.locator('nav.project-bar').screenshot({ path: join(RESULTS, 'careful-open-project.png') });
  await page.getByTestId('project-replace-cancel').click();
  assert.equal(await question.count(), 0);
  assert.equal(await page.getByTestId('dataset-summary').getAttribute('data-images'), String(shared.count + 2), 'nothing replaced');
  await page.getByTestId('open-project').setInputFiles(saved.path);
  await question.waitFor();
  await page.getByTestId('project-replace-confirm').click();
  await waitForImages(page, shared.count);
  assert.equal(await question.count(), 0);
  await page.context().close();
  await rm(shared.dir, { recursive: true, force: true });
});
