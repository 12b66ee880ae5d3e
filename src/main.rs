//! The web app's entry point (built by Trunk for wasm32); natively, the `ajuste` command (`src/cli/`).

#[cfg(target_arch = "wasm32")]
mod app;

#[cfg(target_arch = "wasm32")]
fn main() {
    app::run();
}

// Natively the same binary is the command line: training and prediction on the same core, from a terminal.
#[cfg(all(not(target_arch = "wasm32"), feature = "ml"))]
mod cli;

#[cfg(all(not(target_arch = "wasm32"), feature = "ml"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(all(not(target_arch = "wasm32"), not(feature = "ml")))]
fn main() {
    eprintln!("Ajuste is a web app: run `scripts/serve.sh` and open the printed URL.");
}
