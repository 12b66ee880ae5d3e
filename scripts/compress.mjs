// Finishes the built app for serving: drops the wasm's `name` section (function names for debugging, a fifth of
// the file; see README "Page load" for why this and not wasm-opt's passes), writes NAME.gz and NAME.br beside each
// .wasm, .js, .css, .html and .svg file, for servers that send them with Content-Encoding (tests/e2e/helpers.mjs
// serveDist, README), and writes the page wasm's size into index.html (`data-bytes` on the loading bar): a
// compressed response's Content-Length counts compressed bytes, so boot.js could not show progress from it.
// Run by Trunk after each build (Trunk.toml hook, on its staging dir); by hand: node scripts/compress.mjs dist
import { readdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join, extname } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const dir = process.env.TRUNK_STAGING_DIR ?? process.argv[2] ?? 'dist';
const EXTENSIONS = new Set(['.wasm', '.js', '.css', '.html', '.svg']);

// A wasm module without its custom section named `name` (sections: id byte, LEB128 size, contents).
function withoutNames(wasm) {
  const kept = [wasm.subarray(0, 8)];
  let at = 8;
  const leb = () => {
    let value = 0, shift = 0, byte;
    do { byte = wasm[at++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
    return value;
  };
  while (at < wasm.length) {
    const start = at;
    const id = wasm[at++];
    const size = leb();
    const end = at + size;
    const names = id === 0 && wasm.subarray(at + 1, at + 1 + wasm[at]).toString() === 'name' && wasm[at] < 0x80;
    if (!names) kept.push(wasm.subarray(start, end));
    at = end;
  }
  if (at !== wasm.length) throw new Error('a wasm section runs past the end of the file');
  return Buffer.concat(kept);
}

for (const name of await readdir(dir)) {
  if (extname(name) !== '.wasm') continue;
  const file = join(dir, name);
  await writeFile(file, withoutNames(await readFile(file)));
}

const html = join(dir, 'index.html');
const { size } = await stat(join(dir, 'ajuste_bg.wasm'));
const page = await readFile(html, 'utf8');
if (!page.includes('id="boot-bar"')) throw new Error(`${html}: no element with id="boot-bar"`);
await writeFile(html, page.replace(/id="boot-bar"( data-bytes="\d+")?/, `id="boot-bar" data-bytes="${size}"`));

for (const name of await readdir(dir)) {
  if (!EXTENSIONS.has(extname(name))) continue;
  const body = await readFile(join(dir, name));
  await writeFile(join(dir, `${name}.gz`), gzipSync(body, { level: 9 }));
  await writeFile(join(dir, `${name}.br`), brotliCompressSync(body, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
    },
  }));
}
