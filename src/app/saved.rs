//! Keeps the work across reloads: brings back the dataset and the last trained model, then saves each one
//! whenever it changes (one `Effect` each) and the options to local storage.

use std::sync::Arc;

use ajuste::data::{Dataset, snapshot};
use leptos::prelude::*;

use super::browser::{storage_get, storage_set, yield_to_browser};
use super::dataset_flow::DatasetFlow;
use super::error::AppError;
use super::persist;
use super::training_flow::{TrainedOn, TrainingFlow};

const OPTIONS_KEY: &str = "ajuste.options";

pub fn saved_options() -> ajuste::train::TrainOptions {
    storage_get(OPTIONS_KEY)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// Restores the last visit's work, then keeps saving. Saving starts only once the restore is over, so the
/// empty page never overwrites what was saved.
pub fn keep(dataset: DatasetFlow, training: TrainingFlow) {
    let restored = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        restore(dataset, training).await;
        restored.set(true);
    });

    Effect::new(move |_| {
        if let Ok(json) = serde_json::to_string(&*training.options.read()) {
            storage_set(OPTIONS_KEY, &json);
        }
    });

    // Saves run one at a time, and the loop goes again while changes keep coming: what ends up stored is
    // always the newest dataset.
    let saving = StoredValue::new(false);
    let version = StoredValue::new(0u64);
    Effect::new(move |_| {
        dataset.dataset.track();
        if !restored.get() {
            return;
        }
        version.update_value(|v| *v += 1);
        persist::mark_unsaved(persist::DATASET_KEY);
        if saving.get_value() {
            return;
        }
        saving.set_value(true);
        leptos::task::spawn_local(async move {
            loop {
                // Let a burst of changes (a drop, then a rename) settle into one save.
                yield_to_browser().await;
                let saved_version = version.get_value();
                let current: Arc<Dataset> = dataset.dataset.get_untracked();
                let result = if current.num_images() > 0 {
                    persist::save(persist::DATASET_KEY, &snapshot::encode(&current)).await
                } else {
                    persist::remove(persist::DATASET_KEY).await
                };
                if let Err(why) = result {
                    dataset.error.set(Some(AppError::Save {
                        what: "Your images",
                        why,
                    }));
                    break;
                }
                if version.get_value() == saved_version {
                    persist::mark_saved(persist::DATASET_KEY);
                    break;
                }
            }
            saving.set_value(false);
        });
    });

    Effect::new(move |_| {
        let Some(trained) = training.trained.get() else { return };
        if !restored.get() {
            return;
        }
        persist::mark_unsaved(persist::TRAINING_KEY);
        leptos::task::spawn_local(async move {
            match save_training(&trained).await {
                Ok(()) => persist::mark_saved(persist::TRAINING_KEY),
                Err(why) => training.export_error.set(Some(AppError::Save {
                    what: "The trained model",
                    why: format!("{why}: download it before leaving"),
                })),
            }
        });
    });
}

async fn save_training(trained: &TrainedOn) -> Result<(), String> {
    let json = serde_json::to_vec(trained).map_err(|e| e.to_string())?;
    // Checked by reading it back: a non-finite number (a diverged run) would be written as `null` and could
    // not be read on the next visit.
    serde_json::from_slice::<TrainedOn>(&json).map_err(|_| "it holds numbers that are not finite".to_string())?;
    persist::save(persist::TRAINING_KEY, &json).await
}

/// A damaged save is reported and dropped; it never blocks the page. Whatever the user started meanwhile
/// (a drop, a training) wins over the saved work.
async fn restore(dataset: DatasetFlow, training: TrainingFlow) {
    let mut restored = Vec::new();
    match persist::load(persist::DATASET_KEY).await {
        Ok(Some(bytes)) => match snapshot::decode(&bytes) {
            Ok(saved) if dataset.dataset.with_untracked(|d| d.num_images() == 0) => {
                restored.push(format!(
                    "{} images in {} classes",
                    saved.num_images(),
                    saved.classes.len()
                ));
                dataset.dataset.set(Arc::new(saved));
            }
            Ok(_) => {}
            Err(why) => {
                dataset.error.set(Some(AppError::Restore {
                    what: "The images",
                    why,
                }));
                let _ = persist::remove(persist::DATASET_KEY).await;
            }
        },
        Ok(None) => {}
        Err(e) => web_sys::console::warn_1(&format!("no saved work: {e}").into()),
    }
    if let Ok(Some(json)) = persist::load(persist::TRAINING_KEY).await {
        match serde_json::from_slice::<TrainedOn>(&json) {
            Ok(saved) if !training.is_running() && training.trained.with_untracked(Option::is_none) => {
                restored.push(format!(
                    "the model trained on {} classes",
                    saved.trained.report.labels.len()
                ));
                training.trained.set(Some(Arc::new(saved)));
            }
            Ok(_) => {}
            Err(e) => {
                training.error.set(Some(AppError::Restore {
                    what: "The model",
                    why: e.to_string(),
                }));
                let _ = persist::remove(persist::TRAINING_KEY).await;
            }
        }
    }
    if !restored.is_empty() {
        dataset.notice.set(Some(format!(
            "Restored from your last visit: {}.",
            restored.join(" and ")
        )));
    }
}
