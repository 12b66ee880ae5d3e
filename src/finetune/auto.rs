//! Auto mode: the head alone on embeddings first (seconds), then LoRA r16 on the last 8 blocks and the head
//! conv; the run with the lower best validation loss is kept, and the report says why.

use serde::{Deserialize, Serialize};

use super::options::Augment;
use super::options::{AUTO_LORA, FinetuneOptions};
use super::step::{Phase, StepReport, TrainData};
use super::trainer::DeepTrainer;
use crate::model::embed::embed_batch;
use crate::model::{BackboneDelta, EfficientNetLite0};
use crate::train::{EpochMetrics, Head, TrainOptions, Trainer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoChoice {
    HeadOnly,
    Lora,
}

/// Both runs' histories and the choice, for the charts and `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoReport {
    pub head_history: Vec<EpochMetrics>,
    pub lora_history: Vec<EpochMetrics>,
    pub choice: AutoChoice,
    pub explanation: String,
}

enum Stage {
    Embedding {
        features: Vec<f32>,
        next: usize,
    },
    Head(Box<Trainer>),
    Deep {
        head: Box<Trainer>,
        deep: Box<DeepTrainer>,
    },
    Done {
        head: Box<Trainer>,
        deep: Box<DeepTrainer>,
        report: AutoReport,
    },
}

pub struct AutoTrainer {
    base: EfficientNetLite0,
    data: Option<TrainData>,
    head_options: TrainOptions,
    lora_options: FinetuneOptions,
    augment: Option<Augment>,
    stage: Option<Stage>,
}

impl AutoTrainer {
    /// `lora_options.mode` is replaced by LoRA r16 (α 16) on the last 8 blocks; `head_options` drives the
    /// head-only run (its split comes from `data`).
    pub fn new(
        base: &EfficientNetLite0,
        data: TrainData,
        head_options: TrainOptions,
        lora_options: FinetuneOptions,
        augment: Option<Augment>,
    ) -> Result<Self, String> {
        head_options.validate()?;
        let lora_options = FinetuneOptions {
            mode: AUTO_LORA,
            ..lora_options
        };
        lora_options.validate()?;
        Ok(Self {
            base: base.clone(),
            data: Some(data),
            head_options,
            lora_options,
            augment,
            stage: Some(Stage::Embedding {
                features: Vec::new(),
                next: 0,
            }),
        })
    }

    pub fn is_done(&self) -> bool {
        matches!(self.stage, Some(Stage::Done { .. }))
    }

    /// The head-only run, once it exists.
    pub fn head_trainer(&self) -> Option<&Trainer> {
        match self.stage.as_ref()? {
            Stage::Head(h) | Stage::Deep { head: h, .. } | Stage::Done { head: h, .. } => Some(h),
            Stage::Embedding { .. } => None,
        }
    }

    /// The LoRA run, once it exists.
    pub fn lora_trainer(&self) -> Option<&DeepTrainer> {
        match self.stage.as_ref()? {
            Stage::Deep { deep, .. } | Stage::Done { deep, .. } => Some(deep),
            _ => None,
        }
    }

    pub fn report(&self) -> Option<&AutoReport> {
        match self.stage.as_ref()? {
            Stage::Done { report, .. } => Some(report),
            _ => None,
        }
    }

    /// The kept run's head and backbone changes (none for head only), for the export; None before the end.
    pub async fn chosen(&self) -> Result<Option<(Head, BackboneDelta)>, String> {
        let Some(Stage::Done { head, deep, report }) = &self.stage else {
            return Ok(None);
        };
        Ok(Some(match report.choice {
            AutoChoice::HeadOnly => (head.best().0.clone(), BackboneDelta::default()),
            AutoChoice::Lora => (deep.best_head().await?, deep.best_delta().await?),
        }))
    }

    /// Stops the run in progress; a stopped head run still leads to the LoRA run, a stopped LoRA run ends Auto.
    pub fn request_stop(&mut self) {
        match &mut self.stage {
            Some(Stage::Head(h)) => h.request_stop(),
            Some(Stage::Deep { deep, .. }) => deep.request_stop(),
            _ => {}
        }
    }

    /// One unit of work: a batch of embeddings, an epoch of the head, or one step of the LoRA run.
    pub async fn step(&mut self) -> Result<Option<StepReport>, String> {
        let stage = self.stage.take().ok_or("auto training is in an invalid state")?;
        let bs = self.lora_options.batch_size;
        let (stage, report) = match stage {
            Stage::Embedding { mut features, next } => {
                let data = self.data.as_ref().ok_or("auto training lost its data")?;
                let end = (next + bs).min(data.images.len());
                let refs: Vec<&[u8]> = data.images[next..end].iter().map(Vec::as_slice).collect();
                let device = self.base.head.weight.device();
                features.extend(embed_batch(&self.base, &refs, &device).await?);
                if end < data.images.len() {
                    (Stage::Embedding { features, next: end }, None)
                } else {
                    let dim = features.len() / data.images.len();
                    let head = Trainer::new(
                        features,
                        dim,
                        data.labels.clone(),
                        data.train.clone(),
                        data.val.clone(),
                        data.num_classes,
                        self.head_options.clone(),
                    )?;
                    (Stage::Head(Box::new(head)), None)
                }
            }
            Stage::Head(mut head) => {
                head.step_epoch();
                if head.is_done() {
                    let data = self.data.take().ok_or("auto training lost its data")?;
                    let deep = DeepTrainer::new(&self.base, data, self.lora_options.clone(), self.augment.take())?;
                    (
                        Stage::Deep {
                            head,
                            deep: Box::new(deep),
                        },
                        None,
                    )
                } else {
                    (Stage::Head(head), None)
                }
            }
            Stage::Deep { head, mut deep } => {
                let report = deep.step().await?;
                if deep.is_done() || report.phase == Phase::Done {
                    let report_all = choose(
                        head.history(),
                        head.best().1.val_loss,
                        deep.history(),
                        deep.best_metrics(),
                    );
                    (
                        Stage::Done {
                            head,
                            deep,
                            report: report_all,
                        },
                        Some(report),
                    )
                } else {
                    (Stage::Deep { head, deep }, Some(report))
                }
            }
            done @ Stage::Done { .. } => (done, None),
        };
        self.stage = Some(stage);
        Ok(report)
    }
}

/// Keeps the run with the lower best validation loss (the head on a tie, or when LoRA ran no epoch), and says
/// why in words.
pub fn choose(
    head_history: &[EpochMetrics],
    head_loss: f32,
    lora_history: &[EpochMetrics],
    lora_best: Option<&EpochMetrics>,
) -> AutoReport {
    let lora_loss = lora_best.map_or(f32::INFINITY, |m| m.val_loss);
    let choice = if lora_loss < head_loss {
        AutoChoice::Lora
    } else {
        AutoChoice::HeadOnly
    };
    let explanation = match choice {
        _ if lora_best.is_none() => format!(
            "The head alone was kept (best validation loss {head_loss:.3}): LoRA on the last 8 blocks ended \
             before its first epoch, so there was nothing to compare."
        ),
        AutoChoice::Lora => format!(
            "LoRA on the last 8 blocks was kept: its best validation loss ({lora_loss:.3}) is lower than the \
             head alone's ({head_loss:.3}), so adapting the backbone helps on these images."
        ),
        AutoChoice::HeadOnly => format!(
            "The head alone was kept: its best validation loss ({head_loss:.3}) is no higher than LoRA on the \
             last 8 blocks ({lora_loss:.3}), so the pretrained features already suit these images."
        ),
    };
    AutoReport {
        head_history: head_history.to_vec(),
        lora_history: lora_history.to_vec(),
        choice,
        explanation,
    }
}
