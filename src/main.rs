//! The web app's entry point (built by Trunk for wasm32). Natively there is nothing to run: see the tests and
//! `examples/bench_native.rs`.

#[cfg(target_arch = "wasm32")]
mod app;

#[cfg(target_arch = "wasm32")]
fn main() {
    app::run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("Ajuste is a web app: run `scripts/serve.sh` and open the printed URL.");
}
