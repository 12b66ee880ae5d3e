//! The model and the backend it runs on: probe the adapter, download (or read from cache) the weights, check
//! them, switch backends on request. Owns its state; others read `engine`. The network itself is built and run
//! in the workers (`runner.rs`): the page holds no burn, which keeps its download small.

use std::rc::Rc;

use ajuste::export::open::backbone_layout;
use ajuste::model::TensorFile;
use ajuste::protocol::ImageInput;
use ajuste::web::threads::{self, Threads};
use leptos::prelude::*;

use super::backend::{self, BackendKind};
use super::browser::{now_ms, url_param, window, yield_to_browser};
use super::error::AppError;
use super::model_fetch::{WEIGHTS_URL, fetch_weights};
use super::runner::TrainingService;

#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    Starting,
    Downloading {
        loaded: u64,
        total: Option<u64>,
    },
    Building,
    Ready {
        from_cache: bool,
        megabytes: f64,
        load_ms: f64,
    },
    Failed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BackendView {
    pub reason: String,
    /// Why the CPU path uses another number of threads than `?threads=` asked for.
    pub threads_note: Option<String>,
    pub adapter: String,
    pub webgpu_available: bool,
}

/// The checked weights and the backend the workers build the model on.
#[derive(Clone)]
pub struct Engine {
    pub kind: BackendKind,
    /// The weights file as downloaded (the workers build the backbone from it; the export copies it).
    pub weights: Rc<Vec<u8>>,
    /// Threads the CPU path computes on, the training worker's included (`ajuste::web::threads`).
    pub threads: usize,
    /// The most bytes of cached activations this device should hold (a small device's), if any.
    pub cache_bytes: Option<usize>,
}

#[derive(Clone, Copy)]
pub struct ModelFlow {
    pub status: RwSignal<ModelStatus>,
    pub backend: RwSignal<Option<BackendView>>,
    /// `Some` once the weights are checked; the one place the weights and the backend kind live.
    pub engine: RwSignal<Option<Engine>, LocalStorage>,
    pub error: RwSignal<Option<AppError>>,
    /// The worker that runs the ImageNet preview (started on the first preview).
    preview: StoredValue<TrainingService, LocalStorage>,
}

impl ModelFlow {
    pub fn new() -> Self {
        Self {
            status: RwSignal::new(ModelStatus::Starting),
            backend: RwSignal::new(None),
            engine: RwSignal::new_local(None),
            error: RwSignal::new(None),
            preview: StoredValue::new_local(TrainingService::default()),
        }
    }

    pub fn kind(&self) -> Option<BackendKind> {
        self.engine.with(|e| e.as_ref().map(|e| e.kind))
    }

    pub fn ready(&self) -> bool {
        self.engine.with(Option::is_some) && matches!(self.status.get(), ModelStatus::Ready { .. })
    }

    /// Probes the adapter, picks the backend, fetches the weights and checks them.
    pub async fn start(self) {
        let probe = backend::probe_adapter().await;
        let (kind, reason) = backend::choose(&probe, backend::forced_by_url());
        let threads = cpu_threads();
        self.backend.set(Some(BackendView {
            reason,
            threads_note: threads.note.clone(),
            adapter: if probe.available {
                probe.description.clone()
            } else {
                "none".into()
            },
            webgpu_available: probe.available,
        }));
        let started = now_ms();
        let status = self.status;
        let fetched = fetch_weights(move |loaded, total| status.set(ModelStatus::Downloading { loaded, total })).await;
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => return self.fail(AppError::ModelLoad(e)),
        };
        let megabytes = fetched.bytes.len() as f64 / 1e6;
        self.status.set(ModelStatus::Building);
        yield_to_browser().await;
        match Self::check(kind, Rc::new(fetched.bytes), &threads) {
            Ok(engine) => {
                self.engine.set(Some(engine));
                self.status.set(ModelStatus::Ready {
                    from_cache: fetched.from_cache,
                    megabytes,
                    load_ms: now_ms() - started,
                });
            }
            Err(e) => self.fail(AppError::ModelLoad(e)),
        }
    }

    fn fail(&self, error: AppError) {
        self.status.set(ModelStatus::Failed);
        self.error.set(Some(error));
    }

    /// Every backbone tensor is present with its shape, read from the file's header only: the workers read the
    /// values when they build the network, and the page's thread is spared folding 4.7M weights it never uses.
    fn check(kind: BackendKind, weights: Rc<Vec<u8>>, threads: &Threads) -> Result<Engine, String> {
        let damaged = |e: String| format!("{WEIGHTS_URL}: {e}");
        let file = TensorFile::parse(&weights).map_err(|e| damaged(e.to_string()))?;
        for (name, expected) in backbone_layout() {
            let found = file.shape(&name).map_err(|e| damaged(e.to_string()))?;
            if found != expected {
                return Err(damaged(format!("{name} has shape {found:?}, expected {expected:?}")));
            }
        }
        Ok(Engine {
            kind,
            weights,
            threads: threads.count,
            cache_bytes: threads.cache_bytes,
        })
    }

    /// Uses `kind`'s device from now on (the workers build the model there at their next task).
    pub fn switch_to(self, kind: BackendKind) {
        let Some(engine) = self.engine.get_untracked() else {
            return;
        };
        if self.kind_untracked() == Some(kind) {
            return;
        }
        self.engine.set(Some(Engine { kind, ..engine }));
        self.backend.update(|b| {
            if let Some(b) = b {
                b.reason = "chosen by you".into();
            }
        });
        self.error.set(None);
    }

    fn kind_untracked(&self) -> Option<BackendKind> {
        self.engine.with_untracked(|e| e.as_ref().map(|e| e.kind))
    }

    /// ImageNet top-5 of one prepared image with the pretrained 1000-class head: what the backbone recognises
    /// before any fine-tuning. Runs in a worker of its own, so it never waits for a training.
    pub async fn imagenet_top5(&self, pixels: &[u8]) -> Result<Vec<(String, f32)>, String> {
        let engine = self.engine.get_untracked().ok_or("the model is not loaded yet")?;
        let prediction = self
            .preview
            .get_value()
            .predict(&engine, None, ImageInput::Pixels, pixels)
            .await?;
        Ok(prediction
            .classes
            .into_iter()
            .take(5)
            .map(|c| (c.label, c.probability))
            .collect())
    }
}

/// The CPU path's threads for this browser: its cores and memory, and `?threads=N` if given.
fn cpu_threads() -> Threads {
    let navigator = window().navigator();
    let memory_gb = js_sys::Reflect::get(&navigator, &"deviceMemory".into())
        .ok()
        .and_then(|v| v.as_f64());
    threads::choose(
        url_param("threads").as_deref(),
        navigator.hardware_concurrency() as usize,
        memory_gb,
    )
}
