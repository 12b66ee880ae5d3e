// The deeper fine-tuning modes in the browser (CPU backend, in the training worker): Auto on the bundled
// sample trains the head and then LoRA, shows both runs and why one was kept, and downloads the merged model
// (and the PEFT adapter when the kept model is LoRA; otherwise a forced LoRA run supplies one). The page's
// main thread has no long task (over 100 ms) while the worker embeds and trains.
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


/** Trains with the options shown now; returns the final status, every status line seen and the long tasks. */
async function train(page) {
  await page.evaluate(() => {
    window.__texts = new Set();
    window.__since = performance.now();
    const status = document.querySelector('[data-testid=training-status]');
    new MutationObserver(() => window.__texts.add(status.textContent))
      .observe(status, { childList: true, characterData: true, subtree: true });
  });
  await page.getByTestId('train-button').click();
  const status = await waitForTraining(page);
  const { texts, longTasks } = await page.evaluate(() => ({
    texts: [...window.__texts],
    longTasks: window.__longTasks.filter((t) => t.start >= window.__since),
  }));
  return { status, texts, longTasks };
}

test('Auto on the sample: both runs charted, the reason given, merged model and adapter downloaded, no long task',
  { timeout: 1_800_000 }, async () => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
    // Before any page script: every main-thread task over 50 ms the browser reports.
    await context.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    });
    const page = await context.newPage();
    const logs = pageLogs(page);
    await page.goto(`${server.url}?backend=cpu`);
    await waitForModel(page);
    await page.getByTestId('sample-button').click();
    await waitForImages(page, 36);

    assert.equal(await page.getByTestId('finetune-mode').inputValue(), 'auto', 'Auto is the default');
    assert.match(await page.locator('#finetune-mode-help').textContent(), /keeps whichever has the lower loss on the held-out validation images/);
    assert.ok(await page.getByTestId('augment').isChecked(), 'augmentation is on for the deeper modes');
    await page.getByTestId('epochs').fill('2');
    await page.getByTestId('epochs').dispatchEvent('change');

    const { status, texts, longTasks } = await train(page);
    assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);
    assert.ok(['head', 'lora'].includes(status.mode), `data-mode ${status.mode}`);
    assert.ok(texts.some((t) => /LoRA.*epoch \d+ \/ 2, step \d+ \/ \d+ \([\d.]+ images\/s/.test(t)),
      `the LoRA progress shows epoch, step and images/s: ${texts.join(' | ')}`);
    const runs = await page.getByTestId('run-charts').evaluateAll((els) => els.map((e) => [e.dataset.run, e.dataset.epochs]));
    assert.deepEqual(runs, [['head', '2'], ['lora', '2']]);
    const kept = await page.locator('[data-testid=run-charts] h3').allTextContents();
    assert.equal(kept.filter((t) => t.includes('(kept)')).length, 1, kept.join(' | '));
    const explanation = await page.getByTestId('auto-explanation').textContent();
    assert.match(explanation, /was kept: .*validation loss/, explanation);
    await page.screenshot({ path: join(RESULTS, 'finetune-auto.png'), fullPage: true });

    const model = parseSafetensors((await download(page, 'export-button', 'model.safetensors')).bytes);
    assert.deepEqual(model.header['classifier.weight'].shape, [3, 1280]);
    assert.equal(model.header['blocks.15.project.conv.weight'].dtype, 'F32');
    const config = JSON.parse((await download(page, 'export-config', 'config.json')).bytes);
    assert.equal(config.finetune.requested, 'auto');
    assert.equal(config.finetune.mode, status.mode);
    assert.deepEqual(config.finetune.runs.map((r) => r.mode), ['head', 'lora']);
    assert.equal(config.finetune.reason, explanation.trim());

    if (status.mode !== 'lora') {
      // Auto kept the head: no adapter to offer; force LoRA (small and short) to get one.
      assert.equal(await page.getByTestId('export-adapter').count(), 0);
      await page.getByTestId('finetune-mode').selectOption('lora');
      await page.getByTestId('finetune-blocks').fill('2');
      await page.getByTestId('finetune-blocks').dispatchEvent('change');
      await page.getByTestId('lora-rank').fill('4');
      await page.getByTestId('lora-rank').dispatchEvent('change');
      await page.getByTestId('epochs').fill('1');
      await page.getByTestId('epochs').dispatchEvent('change');
      const forced = await train(page);
      assert.equal(forced.status.state, 'done', `${forced.status.text}\n${logs.join('\n')}`);
      assert.equal(forced.status.mode, 'lora');
      longTasks.push(...forced.longTasks);
    }
    const adapter = parseSafetensors((await download(page, 'export-adapter', 'adapter_model.safetensors')).bytes);
    const names = Object.keys(adapter.header).filter((n) => n !== '__metadata__');
    assert.ok(names.some((n) => n.includes('lora_A')) && names.some((n) => n.includes('lora_B')), names.join(', '));
    const adapterConfig = JSON.parse((await download(page, 'export-adapter-config', 'adapter_config.json')).bytes);
    assert.equal(adapterConfig.peft_type, 'LORA');
    const merged = parseSafetensors((await download(page, 'export-button', 'model.safetensors')).bytes);
    assert.deepEqual(Object.keys(merged.header).sort(), Object.keys(model.header).sort(), 'the same layout merged');

    const worst = Math.max(0, ...longTasks.map((t) => t.duration));
    console.log(`main-thread long tasks during training: ${longTasks.length}, longest ${worst.toFixed(0)} ms`);
    assert.deepEqual(longTasks.filter((t) => t.duration > 100), [], 'no main-thread task over 100 ms');
  });

test('Stop during a LoRA run ends it within a step, from the worker', { timeout: 1_800_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('sample-button').click();
  await waitForImages(page, 36);
  await page.getByTestId('finetune-mode').selectOption('lora');
  await page.getByTestId('epochs').fill('50');
  await page.getByTestId('epochs').dispatchEvent('change');
  // Batches of 4: several steps per epoch, so a stop after the first lands inside the first epoch.
  await page.locator('details.options').evaluate((d) => { d.open = true; });
  await page.locator('#opt-batch').fill('4');
  await page.locator('#opt-batch').dispatchEvent('change');
  await page.getByTestId('train-button').click();
  // The first LoRA step has reported: the run is in its mini-batches.
  await page.locator('[data-testid=training-status]', { hasText: /step [1-9]\d* \// }).waitFor({ timeout: 600_000 });
  const clicked = Date.now();
  await page.getByTestId('stop-button').click();
  await page.waitForFunction(() => !['embedding', 'training'].includes(
    document.querySelector('[data-testid=training-status]').dataset.state), null, { timeout: 120_000, polling: 100 });
  const status = await page.getByTestId('training-status').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
  const seconds = (Date.now() - clicked) / 1000;
  console.log(`LoRA run ended ${seconds.toFixed(1)} s after Stop (${status.state}: ${status.text})`);
  assert.ok(seconds < 60, `Stop took ${seconds} s`);
  // Nothing trained yet (stopped inside the first epoch): no model, and the notice says why.
  assert.equal(status.state, 'idle', status.text);
  assert.equal(status.mode, '');
  assert.match(await page.getByTestId('training-notice').textContent(), /Stopped before the first epoch/);
});
