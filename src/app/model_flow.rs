//! The model and the backend it runs on: probe the adapter, download (or read from cache) the weights, build
//! the model on the chosen device, switch backends on request. Owns its state; others read `engine`.

use std::rc::Rc;

use ajuste::model::embed::{embed_and_classify, input_tensor};
use ajuste::model::{EfficientNetLite0, IMAGENET_CLASSES, imagenet, load_efficientnet};
use burn::tensor::Device;
use leptos::prelude::*;

use super::backend::{self, BackendKind};
use super::browser::{now_ms, yield_to_browser};
use super::error::AppError;
use super::model_fetch::{WEIGHTS_URL, fetch_weights};

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
    pub adapter: String,
    pub webgpu_available: bool,
}

/// The built model on its device: what embedding and the ImageNet preview run on.
#[derive(Clone)]
pub struct Engine {
    pub kind: BackendKind,
    pub device: Device,
    pub model: Rc<EfficientNetLite0>,
    /// The weights file as downloaded (the export copies the backbone from it).
    pub weights: Rc<Vec<u8>>,
}

#[derive(Clone, Copy)]
pub struct ModelFlow {
    pub status: RwSignal<ModelStatus>,
    pub backend: RwSignal<Option<BackendView>>,
    /// `Some` once the model is built; the one place the model, device and backend kind live.
    pub engine: RwSignal<Option<Engine>, LocalStorage>,
    pub error: RwSignal<Option<AppError>>,
    /// WebGPU can be initialised once per page: kept for switching back and forth.
    webgpu: StoredValue<Option<Device>, LocalStorage>,
}

impl ModelFlow {
    pub fn new() -> Self {
        Self {
            status: RwSignal::new(ModelStatus::Starting),
            backend: RwSignal::new(None),
            engine: RwSignal::new_local(None),
            error: RwSignal::new(None),
            webgpu: StoredValue::new_local(None),
        }
    }

    pub fn kind(&self) -> Option<BackendKind> {
        self.engine.with(|e| e.as_ref().map(|e| e.kind))
    }

    pub fn ready(&self) -> bool {
        self.engine.with(Option::is_some) && matches!(self.status.get(), ModelStatus::Ready { .. })
    }

    /// Probes the adapter, picks the backend, fetches the weights and builds the model.
    pub async fn start(self) {
        let probe = backend::probe_adapter().await;
        let (kind, reason) = backend::choose(&probe, backend::forced_by_url());
        self.backend.set(Some(BackendView {
            reason,
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
        match self.build(kind, Rc::new(fetched.bytes)).await {
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

    async fn build(&self, kind: BackendKind, weights: Rc<Vec<u8>>) -> Result<Engine, String> {
        let device = match (kind, self.webgpu.get_value()) {
            (BackendKind::WebGpu, Some(device)) => device,
            _ => {
                let device = backend::init_device(kind).await?;
                if kind == BackendKind::WebGpu {
                    self.webgpu.set_value(Some(device.clone()));
                }
                device
            }
        };
        let model = load_efficientnet(&weights, &device).map_err(|e| format!("{WEIGHTS_URL}: {e}"))?;
        Ok(Engine {
            kind,
            device,
            model: Rc::new(model),
            weights,
        })
    }

    /// Rebuilds the model on `kind`'s device; on failure the current one stays in use.
    pub async fn switch_to(self, kind: BackendKind) {
        let Some(weights) = self.engine.with_untracked(|e| e.as_ref().map(|e| e.weights.clone())) else {
            return;
        };
        if self.kind_untracked() == Some(kind) {
            return;
        }
        let previous = self.status.get_untracked();
        self.status.set(ModelStatus::Building);
        let started = now_ms();
        match self.build(kind, weights.clone()).await {
            Ok(engine) => {
                self.engine.set(Some(engine));
                self.backend.update(|b| {
                    if let Some(b) = b {
                        b.reason = "chosen by you".into();
                    }
                });
                self.error.set(None);
                self.status.set(ModelStatus::Ready {
                    from_cache: true,
                    megabytes: weights.len() as f64 / 1e6,
                    load_ms: now_ms() - started,
                });
            }
            Err(why) => {
                self.status.set(previous);
                self.error.set(Some(AppError::BackendSwitch {
                    backend: kind.label(),
                    why,
                }));
            }
        }
    }

    fn kind_untracked(&self) -> Option<BackendKind> {
        self.engine.with_untracked(|e| e.as_ref().map(|e| e.kind))
    }

    /// ImageNet top-5 of one image with the pretrained 1000-class head: what the backbone recognises before
    /// any fine-tuning. Computed on the CPU from read-back logits (WebGPU has no top-k).
    pub async fn imagenet_top5(&self, pixels: &[u8]) -> Result<Vec<(String, f32)>, String> {
        let engine = self.engine.get_untracked().ok_or("the model is not loaded yet")?;
        if engine.model.num_classes() != IMAGENET_CLASSES {
            return Err("the model has no ImageNet head".into());
        }
        let (_, logits) = embed_and_classify(&engine.model, input_tensor(&[pixels], &engine.device))
            .await
            .map_err(|e| e.to_string())?;
        Ok(imagenet::top_k(&logits, 5)
            .into_iter()
            .map(|(i, p)| (imagenet::class_name(i).unwrap_or("?").to_string(), p))
            .collect())
    }
}
