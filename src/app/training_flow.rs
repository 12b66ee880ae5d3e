//! Training: the options, the run under way (at most one), and the last trained model with the fingerprint
//! of the dataset it was trained on. Results, charts and downloads all read `trained`; `stale` says when the
//! dataset has changed since.

use std::collections::BTreeMap;
use std::sync::Arc;

use ajuste::export::{self, ExportMetadata};
use ajuste::head::EpochMetrics;
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::predict::exported_model;
use ajuste::train::{Progress, RunHistory, RunMode, Stage, TrainEvent, Trained};
use leptos::prelude::*;

use super::browser::download;
use super::dataset_flow::DatasetFlow;
use super::error::AppError;
use super::model_flow::ModelFlow;
use super::options_form::Draft;
use super::persist;
use super::resume::{CHECKPOINT_KEY, SavedRun};
use super::runner::{Begin, Job, StopSignal, TrainingService};
use ajuste::protocol::ModelId;

/// A trained model and the fingerprint of the dataset it was trained on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainedOn {
    pub trained: Trained,
    /// This model's name for the page's life (Try it's worker keeps the predictor built for it); a restored or
    /// opened model gets a new one.
    #[serde(skip)]
    pub id: ModelId,
    pub fingerprint: u64,
    /// The file name when the model was opened (*Open model*) rather than trained here.
    #[serde(default)]
    pub opened: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Download {
    Model,
    /// The PEFT LoRA adapter (`adapter_model.safetensors`, the name PEFT loads), when the kept model is LoRA.
    Adapter,
    AdapterConfig,
    Head,
    Labels,
    Config,
}

#[derive(Clone, Copy)]
pub struct TrainingFlow {
    pub options: RwSignal<TrainOptions>,
    /// The option fields' drafts, by field id.
    pub drafts: RwSignal<BTreeMap<&'static str, Draft>>,
    /// `Some` from the click on Train until the run ends: the one-run-at-a-time guard and the progress.
    pub running: RwSignal<Option<Progress>>,
    /// The epochs of the job under way, tagged by run (Auto makes two).
    pub live: RwSignal<Vec<(RunMode, EpochMetrics)>>,
    pub trained: RwSignal<Option<Arc<TrainedOn>>>,
    /// The trained model does not match the dataset any more (renamed, removed, added or cleared images).
    pub stale: Memo<bool>,
    /// A remark on the last run (stopped before anything was trained).
    pub notice: RwSignal<Option<String>>,
    pub error: RwSignal<Option<AppError>>,
    /// A download that failed, shown in the results panel.
    pub export_error: RwSignal<Option<AppError>>,
    /// A deeper run interrupted by a reload, which can go on from its last epoch.
    pub resumable: RwSignal<Option<Arc<SavedRun>>>,
    stop: StoredValue<StopSignal, LocalStorage>,
    service: StoredValue<TrainingService, LocalStorage>,
}

impl TrainingFlow {
    pub fn new(options: TrainOptions, dataset: DatasetFlow) -> Self {
        let trained: RwSignal<Option<Arc<TrainedOn>>> = RwSignal::new(None);
        let stale = Memo::new(move |_| {
            trained.with(|t| {
                t.as_ref()
                    // An opened model was not trained on these images: changing them does not make it stale.
                    .is_some_and(|t| t.opened.is_none() && dataset.dataset.with(|d| d.fingerprint()) != t.fingerprint)
            })
        });
        Self {
            options: RwSignal::new(options),
            drafts: RwSignal::new(BTreeMap::new()),
            running: RwSignal::new(None),
            live: RwSignal::new(Vec::new()),
            trained,
            stale,
            notice: RwSignal::new(None),
            error: RwSignal::new(None),
            export_error: RwSignal::new(None),
            resumable: RwSignal::new(None),
            stop: StoredValue::new_local(StopSignal::default()),
            service: StoredValue::new_local(TrainingService::default()),
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.with(Option::is_some)
    }

    /// The runs the charts draw: the job under way's, else the kept model's (one, or Auto's two).
    pub fn runs(&self) -> Vec<RunHistory> {
        if self.is_running() {
            return self.live.with(|live| {
                let mut runs: Vec<RunHistory> = Vec::new();
                for (mode, metrics) in live {
                    match runs.last_mut() {
                        Some(run) if run.mode == *mode => run.history.push(metrics.clone()),
                        _ => runs.push(RunHistory {
                            mode: *mode,
                            history: vec![metrics.clone()],
                            stop_reason: String::new(),
                            deep: None,
                        }),
                    }
                }
                runs
            });
        }
        self.trained
            .with(|t| {
                t.as_ref().map(|t| {
                    let r = &t.trained.report;
                    if r.runs.is_empty() {
                        // Saved before runs were recorded: the head's history.
                        vec![RunHistory {
                            mode: r.mode,
                            history: r.history.clone(),
                            stop_reason: r.stop_reason.clone(),
                            deep: None,
                        }]
                    } else {
                        r.runs.clone()
                    }
                })
            })
            .unwrap_or_default()
    }

    /// The epochs of the latest run (the one under way, else the kept model's last).
    pub fn history(&self) -> Vec<EpochMetrics> {
        self.runs().pop().map(|r| r.history).unwrap_or_default()
    }

    /// Mode of the model a download gives now (`None` before any training).
    pub fn kept_mode(&self) -> Option<RunMode> {
        self.trained.with(|t| t.as_ref().map(|t| t.trained.report.mode))
    }

    /// Checks everything and claims the single run slot, synchronously: a second click in the same task finds
    /// it taken. `None` (with the reason shown) when training cannot start.
    pub fn begin(&self, dataset: &DatasetFlow, model: &ModelFlow) -> Option<Job> {
        if self.running.with_untracked(Option::is_some) {
            return None;
        }
        let options = self.options.get_untracked();
        let dataset = dataset.dataset.get_untracked();
        let problem = if let Err(e) = options.validate() {
            Some(AppError::Options(e))
        } else if let Err(problems) = dataset.check_trainable() {
            Some(AppError::NotTrainable(problems))
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error.set(Some(problem));
            return None;
        }
        let Some(engine) = model.engine.get_untracked() else {
            self.error
                .set(Some(AppError::Training("the model is not loaded yet".into())));
            return None;
        };
        self.claim();
        Some(Job {
            dataset,
            options,
            engine,
            begin: Begin::New,
        })
    }

    /// Takes the single run slot (checked free by the caller); a new run replaces an interrupted one.
    fn claim(&self) {
        self.running.set(Some(Progress::new(Stage::Embedding, 0, 0, 0.0)));
        self.live.set(Vec::new());
        self.error.set(None);
        self.notice.set(None);
        self.resumable.set(None);
    }

    /// Whether the interrupted run can go on with the images loaded now (the ones it trained on); `None` without
    /// one, or before any image is back (a reload brings the run back before its images).
    pub fn resumable_here(&self, dataset: &DatasetFlow) -> Option<bool> {
        let images = dataset
            .dataset
            .with(|d| (d.num_images() > 0).then(|| d.fingerprint()))?;
        self.resumable.with(|r| r.as_ref().map(|r| r.fingerprint == images))
    }

    /// Like [`Self::begin`], for the interrupted run, which the page offers only while [`Self::resumable_here`].
    pub fn begin_resume(&self, dataset: &DatasetFlow, model: &ModelFlow) -> Option<Job> {
        if self.running.with_untracked(Option::is_some) || !untrack(|| self.resumable_here(dataset)).unwrap_or(false) {
            return None;
        }
        let saved = self.resumable.get_untracked()?;
        let dataset = dataset.dataset.get_untracked();
        let Some(engine) = model.engine.get_untracked() else {
            self.error
                .set(Some(AppError::Training("the model is not loaded yet".into())));
            return None;
        };
        self.set_options(saved.options.clone());
        self.claim();
        Some(Job {
            dataset,
            options: saved.options.clone(),
            engine,
            begin: Begin::Resume(saved.checkpoint.clone()),
        })
    }

    /// Like [`Self::begin`], training the kept model's head further (a model opened from a file): head only,
    /// on the current images, which must have the model's classes (checked in the worker, which says which
    /// differ).
    pub fn begin_continue(&self, dataset: &DatasetFlow, model: &ModelFlow) -> Option<Job> {
        let from = self.trained.get_untracked()?;
        self.options.update(|o| o.finetune = FinetuneChoice::Head);
        let mut job = self.begin(dataset, model)?;
        job.begin = Begin::Continue(Box::new(from.trained.clone()));
        Some(job)
    }

    /// Runs a job claimed by [`Self::begin`]; the previous model stays until this one finishes.
    pub async fn run(self, job: Job) {
        let stop = StopSignal::default();
        self.stop.set_value(stop.clone());
        let fingerprint = job.dataset.fingerprint();
        let service = self.service.get_value();
        let options = job.options.clone();
        // Checkpoint saves under way: the entry is removed only after the last one, when the run has ended.
        let saving = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let on_checkpoint = {
            let saving = saving.clone();
            move |epochs_done: usize, bytes: Vec<u8>| {
                let run = SavedRun {
                    options: options.clone(),
                    fingerprint,
                    mode: self
                        .live
                        .with_untracked(|l| l.last().map(|(m, _)| *m).unwrap_or_default()),
                    epochs_done,
                    checkpoint: Arc::new(bytes),
                };
                let saving = saving.clone();
                saving.set(saving.get() + 1);
                let notice = self.notice;
                leptos::task::spawn_local(async move {
                    let saved = match run.encode() {
                        Ok(bytes) => persist::save(CHECKPOINT_KEY, &bytes).await,
                        Err(e) => Err(e),
                    };
                    // The run goes on; the user should know a reload would now start it over.
                    if let Err(e) = saved {
                        notice.set(Some(format!(
                            "Epoch {epochs_done} could not be saved for resuming after a reload ({e}): the training \
                             goes on, but a reload now would start it over."
                        )));
                    }
                    saving.set(saving.get() - 1);
                });
            }
        };
        service
            .run(
                job,
                stop,
                move |event| match event {
                    TrainEvent::Progress(p) => self.running.set(Some(p)),
                    TrainEvent::Epoch { run, metrics } => self.live.update(|h| h.push((run, metrics))),
                    TrainEvent::Finished(trained) => self.trained.set(Some(Arc::new(TrainedOn {
                        id: ModelId::fresh(),
                        trained: *trained,
                        fingerprint,
                        opened: None,
                    }))),
                    TrainEvent::Stopped { stage, done, total } => self.notice.set(Some(match stage {
                        Stage::Embedding => {
                            format!(
                                "Stopped while computing features ({done} of {total} done); the previous results stay."
                            )
                        }
                        Stage::Training | Stage::Caching | Stage::FineTuning | Stage::Evaluating => {
                            "Stopped before the first epoch; the previous results stay.".into()
                        }
                    })),
                    TrainEvent::Failed(e) => self.error.set(Some(AppError::Training(e))),
                },
                on_checkpoint,
            )
            .await;
        // The run ended (finished, stopped or failed): nothing to resume any more.
        while saving.get() > 0 {
            super::browser::yield_to_browser().await;
        }
        let _ = persist::remove(CHECKPOINT_KEY).await;
        self.running.set(None);
    }

    pub fn request_stop(&self) {
        self.stop.with_value(StopSignal::stop);
    }

    /// Downloads one file of the kept model: always the model the results panel shows.
    pub fn export(&self, model: &ModelFlow, what: Download) {
        let outcome = (|| -> Result<(), String> {
            let trained = self.trained.get_untracked().ok_or("train a model first")?;
            let Trained { head, delta, report } = &trained.trained;
            let meta = ExportMetadata::from_report(report);
            let weights = || {
                model
                    .engine
                    .with_untracked(|e| e.as_ref().map(|e| e.weights.clone()))
                    .ok_or("the model weights are not loaded")
            };
            match what {
                Download::Model => {
                    // The fine-tuned backbone merged into the shipped layout (unchanged for head only).
                    let bytes = exported_model(&weights()?, &trained.trained).map_err(|e| e.to_string())?;
                    download("model.safetensors", &bytes, "application/octet-stream")
                }
                Download::Adapter | Download::AdapterConfig => {
                    let adapter = export::peft_adapter(&weights()?, delta, head, &meta).map_err(|e| e.to_string())?;
                    if what == Download::Adapter {
                        download(
                            "adapter_model.safetensors",
                            &adapter.safetensors,
                            "application/octet-stream",
                        )
                    } else {
                        download(
                            "adapter_config.json",
                            adapter.config_json.as_bytes(),
                            "application/json",
                        )
                    }
                }
                Download::Head => {
                    let bytes = export::head_safetensors(head, &meta).map_err(|e| e.to_string())?;
                    download("head.safetensors", &bytes, "application/octet-stream")
                }
                Download::Labels => download("labels.txt", export::labels_txt(&meta.labels).as_bytes(), "text/plain"),
                Download::Config => download(
                    "config.json",
                    export::config_json_of(report).as_bytes(),
                    "application/json",
                ),
            }
        })();
        self.export_error.set(outcome.err().map(AppError::Export));
    }
}
