// Page load of the built app (dist/, or AJUSTE_DIST): the wasm's size raw and compressed, and in headless Chromium
// the time to the first paint (the static shell), until the sample button is usable (the app mounted) and until
// the model is ready, on a first visit (empty caches) and a second (the model in Cache Storage), on loopback and on
// a link throttled to 20 Mbit/s. Prints a markdown table and appends it to bench/results/<date>-page.md.
//   trunk build && node bench/page_load.mjs [label] [runs]
//   AJUSTE_PLAIN=1: serve without the pre-compressed copies (as a host that sends the files as they are).
import { readFile, stat, appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { serveDist, launch, distUnderTest, ROOT } from '../tests/e2e/helpers.mjs';

const label = process.argv[2] ?? 'this build';
const runs = Number(process.argv[3] ?? 3);
const dist = distUnderTest();
const plain = Boolean(process.env.AJUSTE_PLAIN);
const MB = (n) => (n / 1e6).toFixed(2);

async function sizeOf(file) {
  try { return (await stat(file)).size; } catch { return null; }
}

async function sizes(name) {
  const raw = await readFile(join(dist, name));
  const gz = (await sizeOf(join(dist, `${name}.gz`))) ?? gzipSync(raw, { level: 9 }).length;
  const br = await sizeOf(join(dist, `${name}.br`));
  return `${MB(raw.length)} / ${MB(gz)} / ${br === null ? '–' : MB(br)}`;
}

// One visit: milliseconds from navigation start to the first contentful paint, to the sample button enabled and
// to the model status saying ready, and the bytes the wasm took on the wire.
async function visit(page) {
  await page.goto('about:blank');
  await page.goto(server.url);
  const usable = await page.waitForFunction(() => {
    const b = document.querySelector('[data-testid=sample-button]');
    return b && !b.disabled && performance.now();
  }, null, { polling: 'raf', timeout: 600_000 });
  const ready = await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid=model-status]')?.textContent ?? '';
    return s.includes('ready') && performance.now();
  }, null, { polling: 100, timeout: 600_000 });
  const { fcp, wire } = await page.evaluate(() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
    wire: performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.wasm'))
      .reduce((sum, e) => sum + e.transferSize, 0),
  }));
  return { fcp, usable: await usable.jsonValue(), ready: await ready.jsonValue(), wire };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// A fresh browser context per run: the first visit has empty caches, the second the model in Cache Storage.
async function scenario(browser, throttle) {
  const first = [], second = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    if (throttle) {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20,
        downloadThroughput: (20e6 / 8), uploadThroughput: (5e6 / 8) });
    }
    first.push(await visit(page));
    second.push(await visit(page));
    await context.close();
  }
  return { first, second };
}

function row(link, visitName, results) {
  const m = (key) => median(results.map((r) => r[key]));
  return `| ${label} | ${link} | ${visitName} | ${Math.round(m('fcp'))} | ${(m('usable') / 1000).toFixed(2)} | ` +
    `${(m('ready') / 1000).toFixed(2)} | ${MB(m('wire'))} |`;
}

const server = await serveDist({ compressed: !plain });
const browser = await launch();
const lines = [
  `Build: ${label}${plain ? ', served uncompressed' : ', served with the .br copies'}. ` +
    `Wasm MB raw / gzip / br: page ${await sizes('ajuste_bg.wasm')}, worker ${await sizes('worker_bg.wasm')}. ` +
    `Median of ${runs} runs.`,
  '',
  '| build | link | visit | first paint ms | sample button usable s | model ready s | wasm on the wire MB |',
  '|---|---|---|---:|---:|---:|---:|',
];
for (const [link, throttle] of [['loopback', false], ['20 Mbit/s', true]]) {
  const { first, second } = await scenario(browser, throttle);
  lines.push(row(link, 'first', first), row(link, 'second (model cached)', second));
}
await browser.close();
server.close();

const chromium = (() => {
  try { return execFileSync(process.env.CHROMIUM ?? '/usr/bin/chromium', ['--version']).toString().trim(); } catch { return 'Chromium'; }
})();
const now = new Date().toISOString();
const header = `## Page load ${now.slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} cores, ${cpus()[0]?.model}, ${chromium}`;
const table = [header, '', ...lines, ''].join('\n');
console.log(table);
await mkdir(join(ROOT, 'bench/results'), { recursive: true });
await appendFile(join(ROOT, 'bench/results', `${now.slice(0, 10)}-page.md`), `${table}\n`);
