// A phone (390×844, touch): the whole flow on the CPU path, with every panel, snippet and table open. Nothing may
// make the page wider than the screen (a wide table or code scrolls inside its own box, and says it does), and
// every control a finger uses is at least 44 px tall and wide. A low-memory phone (navigator.deviceMemory 4) says
// that it trains on fewer threads with a small activation cache. Screenshot: test-results/phone.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { serveDist, launch, waitForTraining, waitForModel, waitForImages, RESULTS, pageLogs } from './helpers.mjs';

let server, browser;
before(async () => {
  await mkdir(RESULTS, { recursive: true });
  server = await serveDist();
  browser = await launch();
});
after(async () => { await browser?.close(); server?.close(); });

const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

/** Opens every <details> the page has now (the options, the export snippets). */
async function openEverything(page) {
  await page.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; }));
}

/** Elements wider than the viewport's right edge, and the page's scroll width. */
async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')].filter((el) => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= width + 0.5) return false;
      // Inside a box that scrolls sideways is fine: only what the page itself would scroll counts.
      for (let p = el.parentElement; p; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (/(auto|scroll|hidden)/.test(s.overflowX) && p.getBoundingClientRect().right <= width + 0.5) return false;
      }
      return true;
    }).map((el) => `${el.tagName.toLowerCase()}.${el.className} (${Math.round(el.getBoundingClientRect().right)} px)`);
    return { scrollWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 8) };
  });
}

/** Visible controls a finger taps that are smaller than 44×44 px (a checkbox counts its label). */
async function smallTargets(page) {
  return page.evaluate(() => {
    const controls = document.querySelectorAll('button, select, summary, a[href], input:not([type=hidden]), label.button');
    const small = [];
    for (const el of controls) {
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || style.display === 'none' || el.closest('.visually-hidden')) continue;
      let r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      // A checkbox, radio or file input is tapped through its label.
      const label = el.closest('label') ?? (el.id && document.querySelector(`label[for="${el.id}"]`));
      if (['checkbox', 'radio', 'file'].includes(el.type) && label) r = label.getBoundingClientRect();
      if (el.classList.contains('visually-hidden') && label) r = label.getBoundingClientRect();
      // Links inside running text are exempt (WCAG 2.5.8's inline exception).
      if (el.tagName === 'A' && el.closest('p, li') && !el.classList.contains('button')) continue;
      if (r.height < 44 - 0.5 || r.width < 44 - 0.5) {
        small.push(`${el.tagName.toLowerCase()}[${el.dataset.testid ?? el.id ?? ''}] "${(el.textContent || el.value || '').trim().slice(0, 30)}" ${Math.round(r.width)}×${Math.round(r.height)}`);
      }
    }
    return small;
  });
}

test('on a phone: no sideways scrolling with everything open, 44 px tap targets, a training to done', { timeout: 900_000 }, async () => {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  const logs = pageLogs(page);
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  await page.getByTestId('sample-button').tap();
  await waitForImages(page, 36);
  await page.getByTestId('finetune-mode').selectOption('head');
  await page.getByTestId('train-button').tap();
  const status = await waitForTraining(page);
  assert.equal(status.state, 'done', `${status.text}\n${logs.join('\n')}`);
  await openEverything(page);

  const { scrollWidth, width, wide } = await overflow(page);
  assert.ok(scrollWidth <= width, `the page is ${scrollWidth} px wide on a ${width} px screen: ${wide.join(', ')}`);
  assert.deepEqual(wide, []);
  // The confusion table's box says it scrolls when it does.
  const table = await page.locator('.table-scroll').first().evaluate((el) => ({
    scrolls: el.scrollWidth > el.clientWidth,
    hint: el.closest('.panel')?.querySelector('[data-testid=table-scroll-hint]')?.textContent ?? '',
  }));
  if (table.scrolls) assert.match(table.hint, /scroll/i, 'a table wider than the screen says it scrolls');
  const small = await smallTargets(page);
  assert.deepEqual(small, [], `tap targets under 44 px:\n${small.join('\n')}`);
  await page.getByTestId('timings').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(RESULTS, 'phone.png'), fullPage: false });
  await page.screenshot({ path: join(RESULTS, 'phone-full.png'), fullPage: true });
  await context.close();
});

test('a phone that reports 4 GB of memory trains on fewer threads, with a small cache, and says so', { timeout: 300_000 }, async () => {
  const context = await browser.newContext(PHONE);
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => 4 });
    Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 8 });
  });
  const page = await context.newPage();
  await page.goto(`${server.url}?backend=cpu`);
  await waitForModel(page);
  const note = await page.getByTestId('threads-note').textContent();
  assert.match(note, /4 GB of memory: training uses 2 threads and at most 64 MB of cached activations/, note);
  await context.close();
});
