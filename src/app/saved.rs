//! Keeps the work across reloads: brings back the dataset (its index and thumbnails; the images stay in
//! storage, `dataset_store.rs`) and the last trained model, then saves each one whenever it changes (one
//! `Effect` each) and the options to local storage.

use std::collections::HashSet;
use std::sync::Arc;

use ajuste::data::store::image_key;
use ajuste::data::{Dataset, snapshot};
use leptos::prelude::*;

use super::browser::{storage_get, storage_set, yield_to_browser};
use super::dataset_flow::DatasetFlow;
use super::error::AppError;
use super::training_flow::{TrainedOn, TrainingFlow};
use super::{persist, storage_use};
use ajuste::web::store;

/// While images are being read, the index is written at most this often (each write names every image).
const INDEX_EVERY_MS: u32 = 2000;

const OPTIONS_KEY: &str = "ajuste.options";

pub fn saved_options() -> ajuste::options::TrainOptions {
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
                if dataset.loading.get_untracked().is_some() {
                    gloo::timers::future::TimeoutFuture::new(INDEX_EVERY_MS).await;
                } else {
                    yield_to_browser().await;
                }
                let saved_version = version.get_value();
                let result = dataset.save_index().await;
                if let Ok(images) = result {
                    // The earlier single-blob save, once its images are in the store.
                    let _ = persist::remove(persist::DATASET_KEY).await;
                    storage_use::persist(dataset);
                    storage_use::refresh(dataset, None, Some(images)).await;
                }
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
        // The worker stored features meanwhile.
        leptos::task::spawn_local(async move {
            let features = storage_use::count_features().await;
            storage_use::refresh(dataset, features, None).await;
        });
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
    let mut restored_images = None;
    match restore_images(dataset).await {
        Ok(Some(saved)) if dataset.dataset.with_untracked(|d| d.num_images() == 0) => {
            restored_images = Some(saved.num_images());
            restored.push(format!(
                "{} images in {} classes",
                saved.num_images(),
                saved.classes.len()
            ));
            dataset.dataset.set(Arc::new(saved));
            leptos::task::spawn_local(dataset.load_thumbnails());
        }
        Ok(_) => {}
        Err(why) => dataset.error.set(Some(AppError::Restore {
            what: "The images",
            why,
        })),
    }
    let features = storage_use::count_features().await;
    let images = restored_images.unwrap_or(0);
    storage_use::refresh(dataset, features, Some(images)).await;
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

/// The saved dataset: the store's index, only the images found in storage (images no index names are removed);
/// or else the earlier single-blob save, whose images the next save puts in the store. A damaged index is
/// removed and reported.
async fn restore_images(dataset: DatasetFlow) -> Result<Option<Dataset>, String> {
    let cache = store::open().await?;
    let index = match store::read_index(&cache).await {
        Ok(index) => index,
        Err(why) => {
            store::delete(&cache, ajuste::data::store::INDEX_ENTRY).await?;
            return Err(why);
        }
    };
    let present: HashSet<u64> = store::entries(&cache)
        .await?
        .iter()
        .filter_map(|n| image_key(n))
        .collect();
    let named: HashSet<u64> = index
        .iter()
        .flat_map(|d| d.classes.iter().flat_map(|c| &c.samples))
        .map(|s| s.key())
        .collect();
    for orphan in present.difference(&named) {
        store::delete(&cache, &ajuste::data::store::image_entry(*orphan)).await?;
    }
    let Some(mut saved) = index else {
        return match persist::load(persist::DATASET_KEY).await {
            Ok(Some(bytes)) => snapshot::decode(&bytes).map(Some),
            _ => Ok(None),
        };
    };
    let mut lost = 0;
    for class in &mut saved.classes {
        let before = class.samples.len();
        class.samples.retain(|s| present.contains(&s.key()));
        lost += before - class.samples.len();
    }
    dataset
        .stored
        .update_value(|s| s.keys = present.intersection(&named).copied().collect());
    if lost > 0 {
        dataset.error.set(Some(AppError::Restore {
            what: "Some images",
            why: format!("{lost} were no longer in the browser's storage"),
        }));
    }
    Ok(Some(saved))
}
