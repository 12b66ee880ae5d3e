//! Benchmark (not a test): the backbone on WebGPU on the page's main thread; see tests/common/webgpu_bench.rs.
#![cfg(target_arch = "wasm32")]

#[path = "common/webgpu_bench.rs"]
mod webgpu_bench;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test::wasm_bindgen_test]
async fn bench_webgpu() {
    webgpu_bench::run("the page's main thread").await;
}
