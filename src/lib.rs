//! Ajuste: fine-tune a pretrained EfficientNet-Lite0 on the user's own images, in the browser.
//!
//! The ML core is plain Rust with no browser types, in floors that each use only those below: `model`,
//! `preprocess`, `data` and `options` (the one options type); `head` (the new head on features); `finetune` (the
//! deeper runs with autodiff); `train` (the jobs, Auto, their reports); `export`, `predict`, `project`. It runs on whatever burn device it is handed (WebGPU, flex CPU), so it is tested natively and
//! in the browser alike.
//! Above it, `protocol` (the page ↔ worker messages) and `web` (the browser code the page and the workers share:
//! backend names, the store, the CPU helper pool); the two binaries, the Leptos page (`src/main.rs`, `src/app/`)
//! and the training worker (`src/worker.rs`), sit on top.
//! Data flows one way: files → decoded samples → features → head → charts and export.

pub mod chart;
pub mod data;
pub mod export;
pub mod finetune;
pub mod floats;
pub mod head;
pub mod model;
pub mod options;
pub mod predict;
pub mod preprocess;
pub mod project;
pub mod protocol;
pub mod rng;
pub mod train;
pub mod web;

#[cfg(target_arch = "wasm32")]
pub mod wasm_init;
