//! The messages between the page and the training worker: the top of the library, above the core it carries. Each message is JSON (these types) plus, for
//! `Load`, `Start`, `Resume`, `Continue`, `LoadPredictor`, `Predict` and `Calibrate`, one byte buffer: the weights file, the dataset as
//! `data::snapshot` bytes (images the page has stored travel as name and key; the worker reads their pixels from
//! storage a batch at a time and stores the features it computes, `Host::load_pixels` / `Host::embedded`), or the
//! image to classify; `Resume` and `Checkpoint` carry a checkpoint's bytes too (`DeepTrainer::checkpoint`),
//! beside the JSON.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::export::tflite::Ranges;
use crate::finetune::shard::{ShardSpec, ShardSums};
use crate::options::TrainOptions;
use crate::predict::Prediction;
use crate::train::{TrainEvent, Trained};

/// What the bytes of a `Predict` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageInput {
    /// An image file (JPEG, PNG…), prepared as training prepares files.
    File,
    /// A camera frame, `width`×`height` RGBA.
    Frame { width: u32, height: u32 },
    /// An image already prepared (224×224×3 RGB, `preprocess::prepare_rgb`).
    Pixels,
}

/// Names one kept model for the life of the page, which keys the worker's built predictor on it. A pointer to the
/// model would name it only until it is freed: another model allocated at the same address (train, try, train,
/// train, try) would then be answered by the old one's predictor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelId(u64);

impl ModelId {
    /// An id no other model of this page has had.
    pub fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for ModelId {
    fn default() -> Self {
        Self::fresh()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// Build the backbone from the weights (the bytes) on this backend. On the CPU, `helpers` more workers
    /// (`web/pool.rs`) share each embedding batch: one wasm instance computes on one thread.
    Load {
        webgpu: bool,
        #[serde(default)]
        helpers: usize,
    },
    /// A pool helper: the features of preprocessed images (the bytes, 224×224×3 each), as `Embedded`.
    Embed,
    /// A pool helper: a share of a deeper run's batch (`finetune::shard`; the numbers are the bytes), as `Shared`.
    Share(ShardSpec),
    /// Train on the dataset (the bytes); embeddings of images seen before are reused.
    Start { options: TrainOptions, batch_size: usize },
    /// Continue a deeper run from its checkpoint (the second buffer) on the dataset (the bytes), with the
    /// options it was started with.
    Resume { options: TrainOptions, batch_size: usize },
    /// Train the head of `from` (a kept model) further on the dataset (the bytes), on its own backbone.
    Continue {
        options: TrainOptions,
        batch_size: usize,
        from: Box<Trained>,
    },
    /// End the run within one step.
    Stop,
    /// Build the exported model of `trained` (the bytes: the backbone weights file) for `Predict`; without
    /// one, the pretrained ImageNet classifier (the page's preview of what the backbone sees).
    LoadPredictor {
        webgpu: bool,
        trained: Option<Box<Trained>>,
    },
    /// Classify one image (the bytes) with the loaded predictor.
    Predict { input: ImageInput },
    /// Calibrate the int8 TFLite model (`export::tflite::calibrate`) with the loaded predictor on the training
    /// images of the dataset (the bytes), as `Calibration` messages.
    Calibrate { val_fraction: f32, seed: u64 },
}

/// The int8 calibration's progress, then its activation ranges.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CalibrationStep {
    Progress { done: usize, total: usize },
    Done(Result<Ranges, String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// The worker is listening (messages posted before this would be lost).
    Ready,
    Loaded,
    LoadFailed(String),
    Event(TrainEvent),
    /// A deeper run's state after `epochs_done` epochs, to resume it after a reload (bytes beside the JSON).
    Checkpoint {
        epochs_done: usize,
        #[serde(skip)]
        bytes: Vec<u8>,
    },
    Predicted(Result<Prediction, String>),
    /// A pool helper's answer to `Embed`: the rows travel beside the JSON as f32 bytes.
    Embedded(Result<(), String>),
    /// A pool helper's answer to `Share`: each part's sums, and the values beside the JSON as f32 bytes.
    Shared(Result<Vec<ShardSums>, String>),
    Calibration(CalibrationStep),
}

impl FromWorker {
    /// Whether this message ends a `Load` or a `Start`.
    pub fn is_final(&self) -> bool {
        match self {
            FromWorker::Ready | FromWorker::Checkpoint { .. } => false,
            FromWorker::Calibration(step) => matches!(step, CalibrationStep::Done(_)),
            FromWorker::Loaded
            | FromWorker::LoadFailed(_)
            | FromWorker::Predicted(_)
            | FromWorker::Embedded(_)
            | FromWorker::Shared(_) => true,
            FromWorker::Event(e) => matches!(
                e,
                TrainEvent::Finished(_) | TrainEvent::Stopped { .. } | TrainEvent::Failed(_)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Progress, Stage};

    #[test]
    fn messages_round_trip_and_final_ones_are_known() {
        let start = ToWorker::Start {
            options: TrainOptions::default(),
            batch_size: 4,
        };
        let json = serde_json::to_string(&start).unwrap();
        let back = serde_json::from_str::<ToWorker>(&json).unwrap();
        assert!(matches!(back, ToWorker::Start { batch_size: 4, ref options } if *options == TrainOptions::default()));
        let predict = ToWorker::Predict {
            input: ImageInput::Frame {
                width: 640,
                height: 480,
            },
        };
        let back = serde_json::from_str::<ToWorker>(&serde_json::to_string(&predict).unwrap()).unwrap();
        assert!(matches!(
            back,
            ToWorker::Predict {
                input: ImageInput::Frame {
                    width: 640,
                    height: 480
                }
            }
        ));
        assert!(FromWorker::Predicted(Err("no camera".into())).is_final());
        let progress = FromWorker::Event(TrainEvent::Progress(Progress::new(Stage::Embedding, 1, 2, 1.0)));
        let back: FromWorker = serde_json::from_str(&serde_json::to_string(&progress).unwrap()).unwrap();
        assert!(!back.is_final());
        assert!(FromWorker::Event(TrainEvent::Failed("x".into())).is_final());
        assert!(FromWorker::Loaded.is_final());
        assert!(!FromWorker::Ready.is_final());
        let step = FromWorker::Calibration(CalibrationStep::Progress { done: 8, total: 100 });
        let back: FromWorker = serde_json::from_str(&serde_json::to_string(&step).unwrap()).unwrap();
        assert!(matches!(
            back,
            FromWorker::Calibration(CalibrationStep::Progress { done: 8, total: 100 })
        ));
        assert!(!back.is_final());
        let ranges = Ranges {
            min: vec![-1.0, 0.0],
            max: vec![1.0, 6.0],
            images: 2,
        };
        let done = FromWorker::Calibration(CalibrationStep::Done(Ok(ranges.clone())));
        let back: FromWorker = serde_json::from_str(&serde_json::to_string(&done).unwrap()).unwrap();
        assert!(matches!(back, FromWorker::Calibration(CalibrationStep::Done(Ok(ref r))) if *r == ranges));
        assert!(back.is_final());
        let checkpoint = FromWorker::Checkpoint {
            epochs_done: 2,
            bytes: vec![1, 2, 3],
        };
        assert!(!checkpoint.is_final());
        let json = serde_json::to_string(&checkpoint).unwrap();
        assert!(!json.contains("bytes"), "the bytes travel beside the JSON: {json}");
        let resume = ToWorker::Resume {
            options: TrainOptions::default(),
            batch_size: 4,
        };
        match serde_json::from_str::<ToWorker>(&serde_json::to_string(&resume).unwrap()).unwrap() {
            ToWorker::Resume { options, batch_size } => {
                assert_eq!((options, batch_size), (TrainOptions::default(), 4))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_model_freed_and_another_at_its_address_get_different_ids() {
        // train, try, train, train, try: a later model may be allocated where a freed one was. Here the new
        // model is written into the old one's allocation, so the address is the same for certain.
        struct Kept {
            id: ModelId,
            _weights: [f32; 16],
        }
        let mut slot = Box::new(Kept {
            id: ModelId::fresh(),
            _weights: [0.0; 16],
        });
        let (address, first) = (&*slot as *const Kept, slot.id);
        *slot = Kept {
            id: ModelId::fresh(),
            _weights: [1.0; 16],
        };
        assert_eq!(&*slot as *const Kept, address, "keyed by address, the two models alias");
        assert_ne!(slot.id, first, "keyed by id, they do not");
        let ids: std::collections::HashSet<_> = (0..100).map(|_| ModelId::fresh()).collect();
        assert_eq!(ids.len(), 100, "every model has its own id");
    }
}
