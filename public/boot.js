// Loads the app's WebAssembly. An external file (not Trunk's inline loader) so the page's
// Content-Security-Policy can forbid inline scripts.
import init from './ajuste.js';
await init({ module_or_path: './ajuste_bg.wasm' });
