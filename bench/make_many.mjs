// Makes the many-images benchmark's dataset: N small JPEGs (default 10,000) in 20 class folders, drawn and
// encoded by headless Chromium (canvas → JPEG), so nothing beyond the test tooling is needed. Each class has
// its own hue and shape; every image differs (position, size, noise). Written to bench/data/many/ (git-ignored).
//   node bench/make_many.mjs [count] [dir]
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { launch, ROOT } from '../tests/e2e/helpers.mjs';

const count = Number(process.argv[2] ?? 10_000);
const dir = process.argv[3] ?? join(ROOT, 'bench/data/many');
const CLASSES = 20;
await rm(dir, { recursive: true, force: true });
for (let c = 0; c < CLASSES; c++) await mkdir(join(dir, `class${String(c).padStart(2, '0')}`), { recursive: true });

const browser = await launch();
const page = await browser.newPage();
const BATCH = 250;
let bytes = 0;
for (let start = 0; start < count; start += BATCH) {
  const n = Math.min(BATCH, count - start);
  const images = await page.evaluate(async ({ start, n, classes }) => {
    const canvas = new OffscreenCanvas(96, 96);
    const g = canvas.getContext('2d');
    let seed = start * 7919 + 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const out = [];
    for (let i = start; i < start + n; i++) {
      const c = i % classes;
      g.fillStyle = `hsl(${(c * 360) / classes}, 40%, ${70 + rand() * 20}%)`;
      g.fillRect(0, 0, 96, 96);
      g.fillStyle = `hsl(${(c * 360) / classes + 180}, 70%, ${30 + rand() * 20}%)`;
      const [x, y, r] = [20 + rand() * 56, 20 + rand() * 56, 10 + rand() * 15];
      g.beginPath();
      for (let k = 0; k < 3 + (c % 5); k++) {
        const a = (k / (3 + (c % 5))) * 2 * Math.PI + rand() * 0.3;
        g.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
      }
      g.fill();
      for (let k = 0; k < 40; k++) {
        g.fillStyle = `rgba(${rand() * 255},${rand() * 255},${rand() * 255},0.5)`;
        g.fillRect(rand() * 96, rand() * 96, 3, 3);
      }
      const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.95 });
      const b = new Uint8Array(await blob.arrayBuffer());
      let s = '';
      for (let j = 0; j < b.length; j += 0x8000) s += String.fromCharCode(...b.subarray(j, j + 0x8000));
      out.push([c, i, btoa(s)]);
    }
    return out;
  }, { start, n, classes: CLASSES });
  for (const [c, i, b64] of images) {
    const buf = Buffer.from(b64, 'base64');
    bytes += buf.length;
    await writeFile(join(dir, `class${String(c).padStart(2, '0')}`, `img${String(i).padStart(5, '0')}.jpg`), buf);
  }
}
await browser.close();
console.log(`${count} JPEGs in ${CLASSES} classes, ${(bytes / count / 1000).toFixed(1)} kB each on average, in ${dir}`);
