// The bad-input corpus (tests/fixtures/bad/cases.json, issue 11) dropped into the page: each file-level case
// gives its message in the list under the dataset, and the images already loaded stay as they were. Cases
// marked "batch" go in one drop together (they add nothing); "alone" cases get a drop each.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, writeFile, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { serveDist, launch, makeDataset, waitForImages, waitForModel, waitForProgress, SAMPLE, ROOT } from './helpers.mjs';

const BAD = join(ROOT, 'tests/fixtures/bad');
const { cases } = JSON.parse(await readFile(join(BAD, 'cases.json'), 'utf8'));
let server, browser, page;

before(async () => {
  if (!existsSync(join(BAD, 'large/zip_bomb_lying.zip'))) execFileSync('python3', [join(ROOT, 'scripts/make_bad_inputs.py')]);
  server = await serveDist();
  browser = await launch();
  page = await browser.newPage();
  await page.goto(`${server.url}?backend=cpu`);
  const base = await makeDataset('bad-base', { animal: join(SAMPLE, 'animal'), monument: join(SAMPLE, 'monument'),
    tool: join(SAMPLE, 'tool') }, 3);
  await page.getByTestId('dataset-input').setInputFiles(base);
  await waitForImages(page, 9);
});
after(async () => { await browser?.close(); server?.close(); });

const bytesOf = (from) => from === null ? null
  : readFile(from.startsWith('sample:') ? join(SAMPLE, from.slice(7)) : join(BAD, from));

/** Writes the cases' files under one folder and drops it; returns what the page then shows. */
async function drop(name, group) {
  const added = group.reduce((n, c) => n + c.added, 0);
  const root = join(tmpdir(), `ajuste-bad-${process.pid}`, name);
  await rm(root, { recursive: true, force: true });
  for (const c of group) {
    for (const f of c.files) {
      const path = join(root, f.path);
      await mkdir(f.from === null ? path : dirname(path), { recursive: true });
      if (f.from !== null) await writeFile(path, await bytesOf(f.from));
    }
  }
  const state = () => page.evaluate(() => ({
    images: Number(document.querySelector('[data-testid=dataset-summary]').dataset.images),
    classes: [...document.querySelectorAll('[data-testid=class-card] input[type=text]')].map((i) => i.value),
    notice: document.querySelector('[data-testid=dataset-notice]')?.textContent ?? '',
  }));
  const beforeDrop = await state();
  await page.getByTestId('dataset-input').setInputFiles(root);
  await waitForProgress(page, `the drop of ${name} to be read`, {
    // Read when the images expected are in and the notice is new (or, adding images, may repeat the last one).
    done: ({ notice, images, added }) => !document.querySelector('.progress')
      && Number(document.querySelector('[data-testid=dataset-summary]').dataset.images) === images
      && (added > 0 || (document.querySelector('[data-testid=dataset-notice]')?.textContent ?? '') !== notice),
    progress: () => document.querySelector('.progress span')?.textContent ?? '',
    arg: { notice: beforeDrop.notice, images: beforeDrop.images + added, added },
  });
  const list = (sel) => page.locator(sel).allTextContents();
  return { beforeDrop, afterDrop: await state(), errors: await list('[data-testid=file-errors] > li'),
    warnings: await list('ul.warnings > li') };
}

function check(id, shown, expected, kind) {
  for (const { file, message } of expected) {
    assert.ok(shown.some((t) => t.includes(file) && t.includes(message)),
      `${id}: no ${kind} for “${file}” with “${message}”; shown: ${shown.join(' | ')}`);
  }
}

test('the batched bad files are refused with their messages, nothing loaded changes', async () => {
  const batch = cases.filter((c) => c.via === 'drop' && c.e2e === 'batch');
  assert.ok(batch.length >= 15, `${batch.length} batched cases`);
  const { beforeDrop, afterDrop, errors } = await drop('batch', batch);
  for (const c of batch) check(c.id, errors, c.errors, 'error');
  assert.equal(afterDrop.images, beforeDrop.images, 'no image added or lost');
  assert.deepEqual(afterDrop.classes, beforeDrop.classes, 'no class added or changed');
  assert.match(afterDrop.notice, /added 0 images, rejected \d+ \(see below\)/);
});

for (const c of cases.filter((c) => c.via === 'drop' && c.e2e === 'alone')) {
  test(`${c.id}: ${c.what}`, async () => {
    const { beforeDrop, afterDrop, errors, warnings } = await drop(c.id, [c]);
    // Natively the case's paths start inside the dropped folder; the page also sees that folder (named c.id),
    // so a drop with no image at all is reported under its name.
    const expected = c.errors.map((e) => e.message === 'no images found in the folder' ? { ...e, file: c.id } : e);
    check(c.id, errors, expected, 'error');
    check(c.id, warnings, c.warnings, 'warning');
    assert.equal(afterDrop.images, beforeDrop.images + c.added, `${c.id}: images added; ${afterDrop.notice}`);
    assert.deepEqual(afterDrop.classes.slice(0, beforeDrop.classes.length), beforeDrop.classes, 'loaded classes kept');
    if (c.classes) for (const name of c.classes) assert.ok(afterDrop.classes.includes(name), `${name} in ${afterDrop.classes}`);
    if (c.skipped) assert.ok(afterDrop.notice.includes(`skipped ${c.skipped} already loaded`), afterDrop.notice);
  });
}

/** Whether the saved index in the page's storage is over `min` bytes (run in the page). */
async function indexOver(min) {
  const index = await (await caches.open('ajuste-store-v1')).match('store/index.bin');
  return (index ? (await index.arrayBuffer()).byteLength : 0) > min;
}

// A damaged saved state in the browser's storage: the next visit says what is wrong, starts empty, and the page
// works; the damaged index is removed, so the visit after that starts clean.
for (const c of cases.filter((c) => c.via === 'snapshot')) {
  test(`${c.id}: ${c.what}, found in storage at the next visit`, async () => {
    assert.ok(c.message?.length > 3, `${c.id}: the case names no message to expect`);
    const context = await browser.newContext();
    const fresh = await context.newPage();
    await fresh.goto(`${server.url}?backend=cpu`);
    // The page saves an empty index once it has looked for a saved one: the damaged one goes in after that.
    await waitForProgress(fresh, 'the first (empty) index', { done: indexOver, progress: indexOver, arg: 0 });
    const bytes = [...await bytesOf(c.files[0].from)];
    await fresh.evaluate(async (bytes) => {
      const cache = await caches.open('ajuste-store-v1');
      await cache.put('store/index.bin', new Response(new Uint8Array(bytes)));
    }, bytes);
    await fresh.reload();
    await waitForModel(fresh);
    const error = fresh.getByTestId('dataset-error');
    await error.filter({ hasText: c.message }).waitFor({ timeout: 60_000 });
    assert.match(await error.textContent(), /could not be read/);
    assert.equal(await fresh.getByTestId('dataset-summary').getAttribute('data-images'), '0');
    await fresh.getByTestId('sample-button').click();
    await waitForImages(fresh, 36);
    // The new index is written once the images are stored (the empty one written after the restore is a few
    // bytes; one naming 36 images is over a kilobyte).
    await waitForProgress(fresh, 'the index of the sample images to be saved', {
      done: indexOver, progress: indexOver, arg: 1000,
    });
    await fresh.reload();
    await waitForImages(fresh, 36);
    assert.equal(await fresh.getByTestId('dataset-error').textContent(), '', 'the next visit starts clean');
    await context.close();
  });
}
