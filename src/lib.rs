//! Ajuste: fine-tune a pretrained EfficientNet-Lite0 on the user's own images, in the browser.
//!
//! The ML core (`model`, `preprocess`, `data`, `train`, `export`, `predict`, `project`) is plain Rust with no
//! browser types and runs on whatever burn device it is handed (WebGPU, flex CPU), so it is tested natively and
//! in the browser alike.
//! The Leptos UI and browser glue live in the binary (`src/main.rs`, `src/app/`) and sit on top of it.
//! Data flows one way: files → decoded samples → features → head → charts and export.

pub mod data;
pub mod export;
pub mod finetune;
pub mod floats;
pub mod model;
pub mod predict;
pub mod preprocess;
pub mod project;
pub mod rng;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod wasm_init;
