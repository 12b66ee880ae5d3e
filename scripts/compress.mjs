// Pre-compresses the built app: writes NAME.gz and NAME.br beside each .wasm, .js, .css, .html and .svg file of
// the build, for servers that send them with Content-Encoding (tests/e2e/helpers.mjs serveDist, README). Also
// writes the wasm's uncompressed size into index.html (`data-bytes` on the loading bar): a compressed response's
// Content-Length counts compressed bytes, so boot.js could not show progress from it.
// Run by Trunk after each build (Trunk.toml hook, on its staging dir); by hand: node scripts/compress.mjs dist
import { readdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join, extname } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const dir = process.env.TRUNK_STAGING_DIR ?? process.argv[2] ?? 'dist';
const EXTENSIONS = new Set(['.wasm', '.js', '.css', '.html', '.svg']);

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
