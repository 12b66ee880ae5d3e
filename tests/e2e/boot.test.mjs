// The page before and while its WebAssembly loads (index.html's static shell, public/boot.js): something to read at
// once, the shell gone when the app mounts, the wasm sent pre-compressed, and the model fetched once, beside the
// wasm, and not at all on a second visit (Cache Storage).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, waitForModel } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await serveDist();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  server?.close();
});

test('without scripts the shell still says what the page is, with a progress bar and why nothing loads', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url);
  assert.match(await page.locator('h1').textContent(), /Ajuste/);
  assert.match(await page.locator('#boot-shell main p').first().textContent(), /never leave your machine/);
  const bar = page.getByRole('progressbar', { name: 'Downloading the app' });
  assert.equal(await bar.getAttribute('aria-valuenow'), '0');
  assert.match(await page.locator('#boot-bar').getAttribute('data-bytes'), /^\d+$/, 'the build wrote the wasm size');
  assert.match(await page.locator('noscript').textContent(), /needs JavaScript/);
  await context.close();
});

test('the app replaces the shell; the model is fetched once, then comes from Cache Storage', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const models = [];
  const encodings = {};
  page.on('request', (r) => { if (r.url().endsWith('.safetensors')) models.push(r.url()); });
  page.on('response', async (r) => {
    if (r.url().endsWith('.wasm')) encodings[r.url().split('/').pop()] = (await r.allHeaders())['content-encoding'];
  });
  await page.goto(server.url);
  await page.getByTestId('sample-button').and(page.locator(':enabled')).waitFor();
  assert.equal(await page.locator('#boot-shell').count(), 0, 'the shell is removed when the app mounts');
  assert.equal(await page.locator('h1').count(), 1, 'one title, the app’s');
  assert.equal(encodings['ajuste_bg.wasm'], 'br', 'the wasm is sent brotli-compressed');
  await waitForModel(page);
  assert.equal(models.length, 1, `the model was requested ${models.length} times on the first visit`);

  await page.reload();
  await waitForModel(page, 'from the browser cache');
  assert.equal(models.length, 1, 'a second visit takes the model from Cache Storage, not the network');
  await context.close();
});
