//! What the UI shows, as plain-data signals (Send + Sync). The heavy, browser-bound state (burn device,
//! model, dataset pixels, trainer) lives in `session.rs`, outside the reactive graph.

use ajuste::train::{EpochMetrics, TrainOptions};
use leptos::prelude::*;

use super::backend::BackendKind;

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
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct BackendView {
    pub kind: BackendKind,
    pub reason: String,
    pub adapter: String,
    pub webgpu_available: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClassView {
    pub name: String,
    pub count: usize,
    /// Data URLs of a few thumbnails.
    pub thumbnails: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileErrorView {
    pub file: String,
    pub problem: String,
    pub warning: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Idle,
    Loading {
        done: usize,
        total: usize,
    },
    Embedding {
        done: usize,
        total: usize,
        images_per_second: f64,
    },
    Training {
        epoch: usize,
        epochs: usize,
    },
    Done,
    Error(String),
}

impl Phase {
    /// The stable `data-state` of `training-status` (idle|embedding|training|done|error).
    pub fn state_name(&self) -> &'static str {
        match self {
            Phase::Idle | Phase::Loading { .. } => "idle",
            Phase::Embedding { .. } => "embedding",
            Phase::Training { .. } => "training",
            Phase::Done => "done",
            Phase::Error(_) => "error",
        }
    }
    pub fn busy(&self) -> bool {
        matches!(
            self,
            Phase::Loading { .. } | Phase::Embedding { .. } | Phase::Training { .. }
        )
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Results {
    pub labels: Vec<String>,
    /// Rows: true class, columns: predicted class.
    pub confusion: Vec<Vec<usize>>,
    pub per_class_accuracy: Vec<f32>,
    pub best_epoch: usize,
    pub val_accuracy: f32,
    pub val_loss: f32,
    pub stop_reason: String,
    pub embed_seconds: f64,
    pub images_per_second: f64,
    pub train_seconds: f64,
    pub num_train: usize,
    pub num_val: usize,
}

/// "What the pretrained model sees" in the image the user picked: its name and ImageNet top-5 (label, p).
pub type ImagenetTop = (String, Vec<(String, f32)>);

/// All UI signals; `Copy`, handed around through context.
#[derive(Clone, Copy)]
pub struct Ui {
    pub model: RwSignal<ModelStatus>,
    pub backend: RwSignal<Option<BackendView>>,
    pub classes: RwSignal<Vec<ClassView>>,
    pub file_errors: RwSignal<Vec<FileErrorView>>,
    pub notice: RwSignal<Option<String>>,
    pub phase: RwSignal<Phase>,
    pub history: RwSignal<Vec<EpochMetrics>>,
    pub results: RwSignal<Option<Results>>,
    pub options: RwSignal<TrainOptions>,
    pub imagenet: RwSignal<Option<ImagenetTop>>,
}

impl Ui {
    pub fn new(options: TrainOptions) -> Self {
        Self {
            model: RwSignal::new(ModelStatus::Starting),
            backend: RwSignal::new(None),
            classes: RwSignal::new(Vec::new()),
            file_errors: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            phase: RwSignal::new(Phase::Idle),
            history: RwSignal::new(Vec::new()),
            results: RwSignal::new(None),
            options: RwSignal::new(options),
            imagenet: RwSignal::new(None),
        }
    }

    pub fn images(&self) -> usize {
        self.classes.with(|c| c.iter().map(|c| c.count).sum())
    }
}
