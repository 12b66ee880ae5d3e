// A small W3C WebDriver (classic) client, enough for the cross-browser suite: it starts a driver (chromedriver,
// geckodriver, WebKitWebDriver under Xvfb) on a free port, opens one session and speaks the few commands the tests
// use over fetch. Playwright drives only its own Firefox/WebKit builds, which cannot be downloaded here.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, RESULTS } from '../e2e/helpers.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const MINIBROWSER = `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/webkit2gtk-4.1/MiniBrowser`;

/** The first of `candidates` that exists as a path or is found on PATH. */
function which(...candidates) {
  for (const c of candidates.filter(Boolean)) {
    if (c.includes('/')) { if (existsSync(c)) return c; continue; }
    try { return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim(); } catch { /* next */ }
  }
  throw new Error(`none of ${candidates.join(', ')} found: run scripts/setup.sh`);
}

/** Per engine: how to start its driver on `port` and the capabilities of a new session. */
export const ENGINES = {
  chromium: async () => {
    // The same flags as the wasm-bindgen tests (webdriver.json: headless, SwiftShader WebGPU, no sandbox as root).
    const { 'goog:chromeOptions': options } = JSON.parse(await readFile(join(ROOT, 'webdriver.json'), 'utf8'));
    return {
      command: (port) => [which(process.env.CHROMEDRIVER, 'chromedriver'), [`--port=${port}`]],
      capabilities: { browserName: 'chrome', 'goog:chromeOptions': { ...options,
        binary: process.env.CHROMIUM_BINARY ?? options.binary } },
    };
  },
  firefox: async () => ({
    command: (port) => [which(process.env.GECKODRIVER, 'geckodriver',
      join(process.env.CARGO_HOME ?? join(process.env.HOME ?? '/root', '.cargo'), 'bin/geckodriver')),
      ['--port', String(port), '--log', 'warn']],
    capabilities: { browserName: 'firefox',
      'moz:firefoxOptions': { binary: which(process.env.FIREFOX, 'firefox-esr', 'firefox'), args: ['-headless'] } },
  }),
  webkit: async () => ({
    // WebKitGTK needs an X server; --headless on MiniBrowser makes session creation hang.
    command: (port) => [which('xvfb-run'), ['-a', '-s', '-screen 0 1400x1000x24',
      which(process.env.WEBKIT_DRIVER, 'WebKitWebDriver'), `--port=${port}`]],
    capabilities: { browserName: 'MiniBrowser',
      'webkitgtk:browserOptions': { binary: process.env.MINIBROWSER ?? MINIBROWSER, args: ['--automation'] } },
  }),
};

async function freePort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Starts `engine`'s driver and opens a session; `close()` ends both (call it in after()). */
export async function startSession(engine) {
  const { command, capabilities } = await ENGINES[engine]();
  const port = await freePort();
  const [bin, args] = command(port);
  await mkdir(RESULTS, { recursive: true });
  const log = createWriteStream(join(RESULTS, `xbrowser-${engine}-driver.log`));
  // Its own process group, so that kill(-pid) ends xvfb-run's Xvfb and whatever the driver started too.
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log); child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, signal) => { exited = `${bin} exited (${code ?? signal})`; });
  const kill = () => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ } };
  // Detached, it would outlive a test process that ends without after() (a crash, a test-runner timeout).
  process.once('exit', kill);

  const base = `http://127.0.0.1:${port}`;
  const startedAt = Date.now();
  for (let ready = false; !ready;) {
    const why = exited ?? (Date.now() - startedAt > 60_000 ? `${bin} not ready after 60 s` : null);
    if (why) { kill(); throw new Error(`${why}; see test-results/xbrowser-${engine}-driver.log`); }
    ready = await fetch(`${base}/status`).then((r) => r.json()).then((j) => j.value?.ready !== false, () => false);
    if (!ready) await sleep(200);
  }
  try {
    const session = new Session(base, engine);
    await session.open(capabilities);
    session.onClose = kill;
    return session;
  } catch (e) { kill(); throw e; }
}

export class Session {
  constructor(base, engine) { this.base = base; this.engine = engine; this.id = null; }

  /** One command; a WebDriver error becomes an Error with its name and message. */
  async cmd(method, path, body) {
    const url = `${this.base}${this.id ? `/session/${this.id}` : ''}${path}`;
    // A bound on every command, above the script timeout, so that a hung browser fails the test, not CI.
    const res = await fetch(url, { method, headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(360_000) });
    const json = await res.json();
    if (!res.ok || json.value?.error) {
      throw new Error(`${this.engine} ${method} ${path}: ${json.value?.error}: ${json.value?.message}`);
    }
    return json.value;
  }

  async open(alwaysMatch) {
    const value = await this.cmd('POST', '/session', { capabilities: { alwaysMatch } });
    this.id = value.sessionId;
    this.capabilities = value.capabilities;
    // Pages that train take a while between polls; keep script calls from timing out at the default 30 s.
    await this.cmd('POST', '/timeouts', { script: 300_000, pageLoad: 120_000, implicit: 0 });
    await this.cmd('POST', '/window/rect', { width: 1280, height: 1000 }).catch(() => { /* fixed-size windows */ });
  }

  async close() {
    try { if (this.id) await this.cmd('DELETE', ''); } catch { /* the driver is killed next anyway */ }
    this.id = null;
    this.onClose?.();
  }

  navigate(url) { return this.cmd('POST', '/url', { url }); }
  refresh() { return this.cmd('POST', '/refresh', {}); }

  /** Runs `fn(arg)` in the page (its promise awaited) and returns the result, as Playwright's page.evaluate does,
   * so that the waits of tests/e2e/helpers.mjs (waitForProgress and those on it) work on a session too. */
  evaluate(fn, arg) {
    return this.cmd('POST', '/execute/sync', { script: `return (${fn}).apply(null, arguments)`, args: [arg] });
  }

  /** Runs an async-script body; it calls `arguments[arguments.length - 1](result)` to finish. */
  executeAsync(script, args = []) { return this.cmd('POST', '/execute/async', { script, args }); }

  /** The element `css` selects, waited for up to `timeoutMs` (the page may be re-rendering it). */
  async find(css, timeoutMs = 30_000) {
    for (const start = Date.now(); ;) {
      try {
        const value = await this.cmd('POST', '/element', { using: 'css selector', value: css });
        return value[ELEMENT];
      } catch (e) {
        if (!/no such element/.test(e.message) || Date.now() - start > timeoutMs) throw e;
        await sleep(200);
      }
    }
  }

  async click(css) { return this.cmd('POST', `/element/${await this.find(css)}/click`, {}); }

  /** Picks `paths` (absolute, one per line) in the file input `css`. */
  async setFiles(css, ...paths) {
    return this.cmd('POST', `/element/${await this.find(css)}/value`, { text: paths.join('\n') });
  }

  async screenshot() { return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64'); }

  /** Makes every download the page starts land in window.__downloads (name → Blob) instead of the browser's
   * download manager (MiniBrowser and headless Firefox have no dialog-free one). Idempotent. */
  captureDownloads() {
    return this.evaluate(() => {
      if (window.__downloads) return;
      window.__downloads = {};
      const blobs = new Map();
      const create = URL.createObjectURL;
      URL.createObjectURL = function (obj) { const url = create.call(URL, obj); blobs.set(url, obj); return url; };
      const click = HTMLAnchorElement.prototype.click;
      HTMLAnchorElement.prototype.click = function () {
        if (this.download && blobs.has(this.href)) { window.__downloads[this.download] = blobs.get(this.href); return; }
        return click.call(this);
      };
    });
  }

  /** Clicks `css` and returns the bytes of the download named `name` it starts (captureDownloads first). Read back
   * in chunks as data URLs: one 17 MB string is slow in some drivers, and fetch() of a blob: URL would meet the
   * page's connect-src. */
  async download(css, name, { timeoutMs = 60_000 } = {}) {
    await this.evaluate((n) => { delete window.__downloads[n]; }, name);
    await this.click(css);
    const start = Date.now();
    let size = null;
    while ((size = await this.evaluate((n) => window.__downloads[n]?.size ?? null, name)) === null) {
      if (Date.now() - start > timeoutMs) throw new Error(`${this.engine}: no download named ${name} after clicking ${css}`);
      await sleep(200);
    }
    const chunks = [];
    for (let offset = 0; offset < size; offset += 4 << 20) {
      const url = await this.executeAsync(`const [n, a, b, done] = arguments;
        const r = new FileReader(); r.onload = () => done(r.result); r.onerror = () => done('error:' + r.error);
        r.readAsDataURL(window.__downloads[n].slice(a, b));`, [name, offset, offset + (4 << 20)]);
      if (url.startsWith('error:')) throw new Error(`${this.engine}: reading ${name}: ${url}`);
      chunks.push(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
    }
    return Buffer.concat(chunks);
  }
}
