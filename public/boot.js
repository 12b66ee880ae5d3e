// Starts the app: downloads its WebAssembly with a progress bar in index.html's static shell, and the model
// weights beside it. An external file (not Trunk's inline loader) so the page's Content-Security-Policy can forbid
// inline scripts.
import init from './ajuste.js';

const WASM = './ajuste_bg.wasm';
// As in src/app/model_fetch.rs (CACHE_NAME, WEIGHTS_URL).
const MODEL_CACHE = 'ajuste-models-v1';
const MODEL = 'models/efficientnet_lite0.safetensors';

// The weights download while the wasm does, unless Cache Storage already holds them (a second visit):
// model_fetch.rs takes this pending response instead of fetching again. Low priority: the wasm comes first.
globalThis.ajusteWeights = (async () => {
  try {
    if (await (await caches.open(MODEL_CACHE)).match(MODEL)) return null;
  } catch { /* no Cache Storage (not a secure context): the app fetches without it */ }
  return fetch(MODEL, { priority: 'low' });
})();

const bar = document.getElementById('boot-bar');
const status = document.getElementById('boot-status');
const mb = (bytes) => (bytes / 1e6).toFixed(1);

function show(loaded, total) {
  if (total > 0) {
    const percent = Math.min(100, Math.round((100 * loaded) / total));
    bar.setAttribute('aria-valuenow', String(percent));
    bar.firstElementChild.style.width = `${percent}%`;
    status.textContent = `Downloading the app: ${mb(loaded)} / ${mb(total)} MB`;
  } else {
    bar.removeAttribute('aria-valuenow');
    bar.classList.add('indeterminate');
    status.textContent = `Downloading the app: ${mb(loaded)} MB`;
  }
}

// The wasm's response, its body counted as it streams into the compiler. A compressed response's
// Content-Length counts compressed bytes: then the size comes from `data-bytes`, which the build writes
// (scripts/compress.mjs).
async function wasmWithProgress() {
  const response = await fetch(WASM);
  if (!response.ok || !response.body) throw new Error(`${WASM}: HTTP ${response.status}`);
  const length = response.headers.get('content-encoding') ? null : response.headers.get('content-length');
  const total = Number(length ?? bar.dataset.bytes ?? 0);
  const reader = response.body.getReader();
  let loaded = 0;
  show(0, total);
  const counted = new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        status.textContent = 'Starting the app…';
        controller.close();
        return;
      }
      loaded += value.length;
      show(loaded, total);
      controller.enqueue(value);
    },
  });
  return new Response(counted, { headers: { 'content-type': 'application/wasm' } });
}

try {
  // The app removes the shell when it mounts.
  await init({ module_or_path: wasmWithProgress() });
} catch (e) {
  status.textContent = `The app could not start: ${e?.message ?? e}. It needs a current browser with WebAssembly SIMD.`;
  status.classList.add('error');
  throw e;
}
