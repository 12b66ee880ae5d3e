// The page before and while its WebAssembly loads (index.html's static shell, public/boot.js): something to read at
// once, the shell gone when the app mounts, the wasm sent pre-compressed, and the model fetched once, beside the
// wasm, and not at all on a second visit (Cache Storage).
import { test, before, after } from 'node:test';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { serveDist, launch, waitForModel, contentSecurityPolicy, ROOT } from './helpers.mjs';

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

// index.html's <meta> binds the document only: the workers that handle every image are bound by the header their
// script is served with. A worker of the page tries to fetch from another origin that allows it (CORS): served as
// a host should (Trunk.toml's header), the fetch is refused; served without the header, the same fetch goes through,
// so the test sees the difference the header makes.
test('the policy is served as a header and binds the workers: a worker cannot reach another origin', async () => {
  const policy = await contentSecurityPolicy();
  const other = createServer((req, res) => res.writeHead(200, { 'access-control-allow-origin': '*' }).end('leaked'));
  await new Promise((ok) => other.listen(0, '127.0.0.1', ok));
  const elsewhere = `http://127.0.0.1:${other.address().port}/`;
  const plain = await serveDist({ csp: false });
  const fetchFromWorker = async (url) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const response = await page.goto(url);
    const header = (await response.allHeaders())['content-security-policy'];
    const meta = await page.locator('meta[http-equiv=Content-Security-Policy]').getAttribute('content');
    const started = page.waitForEvent('worker');
    await page.evaluate(() => { window.probe = new Worker('worker_loader.js'); });
    const worker = await started;
    const result = await worker.evaluate((target) => fetch(target).then((r) => r.text(), (e) => `refused: ${e}`), elsewhere);
    await context.close();
    return { header, meta, result };
  };
  try {
    const hosted = await fetchFromWorker(server.url);
    assert.equal(hosted.header, policy, 'the page is served with the policy header');
    assert.equal(hosted.meta.replace(/\s+/g, ' '), policy, 'index.html’s <meta> says the same policy');
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.includes(`Content-Security-Policy: ${policy}`), 'the README gives hosts the same header');
    assert.match(hosted.result, /^refused/, 'the worker’s fetch to another origin is blocked');
    const bare = await fetchFromWorker(plain.url);
    assert.equal(bare.header, undefined);
    assert.equal(bare.result, 'leaked', 'without the header the same fetch goes through (the test can fail)');
  } finally {
    plain.close();
    other.close();
  }
});
