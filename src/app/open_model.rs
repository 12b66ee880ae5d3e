//! *Open model*: a `model.safetensors` downloaded earlier (with its `config.json` / `labels.txt` if picked
//! together) becomes the kept model again, to look at, try and export. A file that is not a model of this
//! layout is refused with the library's message and changes nothing.

use std::sync::Arc;

use ajuste::export::open_model;
use ajuste::protocol::ModelId;
use leptos::html;
use leptos::prelude::*;

use super::dataset_flow::DatasetFlow;
use super::files::{PickedFile, files_from_list, read_file};
use super::model_flow::ModelFlow;
use super::training_flow::{TrainedOn, TrainingFlow};

fn copy_of(picked: &PickedFile) -> PickedFile {
    PickedFile {
        path: picked.path.clone(),
        file: picked.file.clone(),
    }
}

/// The picked files' text by ending (`.json`, `.txt`), when picked.
async fn text_of(files: &[PickedFile], ending: &str) -> Result<Option<String>, String> {
    let Some(picked) = files.iter().find(|f| f.path.to_lowercase().ends_with(ending)) else {
        return Ok(None);
    };
    let file = read_file(copy_of(picked)).await?;
    String::from_utf8(file.bytes)
        .map(Some)
        .map_err(|_| format!("{}: not UTF-8 text", file.path))
}

/// Reads and checks the picked files and keeps the model; a sentence saying what was opened.
async fn open(
    training: TrainingFlow,
    model: ModelFlow,
    dataset: DatasetFlow,
    files: Vec<PickedFile>,
) -> Result<String, String> {
    if training.is_running() {
        return Err("wait until training ends (or stop it) to open a model".into());
    }
    let mut models = files.iter().filter(|f| f.path.to_lowercase().ends_with(".safetensors"));
    let (Some(picked), None) = (models.next(), models.next()) else {
        return Err("pick one model.safetensors (with its config.json and labels.txt, if you have them)".into());
    };
    let name = picked.path.clone();
    let bytes = read_file(copy_of(picked)).await?.bytes;
    let config = text_of(&files, ".json").await?;
    let labels = text_of(&files, ".txt").await?;
    let weights = model
        .engine
        .with_untracked(|e| e.as_ref().map(|e| e.weights.clone()))
        .ok_or("the model is not loaded yet")?;
    let opened = open_model(bytes, config.as_deref(), labels.as_deref()).map_err(|e| {
        if e.file == "model.safetensors" {
            format!("{name}: {}", e.problem)
        } else {
            e.to_string()
        }
    })?;
    let trained = opened.to_trained(&weights).map_err(|e| e.to_string())?;
    let classes = opened.labels.join(", ");
    training.trained.set(Some(Arc::new(TrainedOn {
        id: ModelId::fresh(),
        trained,
        fingerprint: dataset.dataset.with_untracked(|d| d.fingerprint()),
        opened: Some(name.clone()),
    })));
    Ok(format!("Opened {name}: {} classes ({classes}).", opened.labels.len()))
}

#[component]
pub fn OpenModel() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let model = expect_context::<ModelFlow>();
    let dataset = expect_context::<DatasetFlow>();
    let input: NodeRef<html::Input> = NodeRef::new();
    let status = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let on_change = move |_| {
        let Some(element) = input.get() else { return };
        let Some(list) = element.files() else { return };
        let files = files_from_list(&list);
        // Emptied so that the same file can be picked again.
        element.set_value("");
        leptos::task::spawn_local(async move {
            match open(training, model, dataset, files).await {
                Ok(done) => {
                    status.set(Some(done));
                    error.set(None);
                }
                Err(why) => {
                    status.set(None);
                    error.set(Some(format!("Could not open the model: {why}")));
                }
            }
        });
    };
    view! {
        <div class="open-model">
            <label class="button" title="A model.safetensors downloaded from this page (and its config.json, labels.txt)">
                "Open model…"
                <input type="file" class="visually-hidden" data-testid="open-model" node_ref=input multiple
                    accept=".safetensors,.json,.txt" disabled=move || training.is_running() on:change=on_change />
            </label>
            <p class="notice" role="status" data-testid="open-model-status">{move || status.get()}</p>
            <p class="notice error" role="alert" data-testid="open-model-error">{move || error.get()}</p>
        </div>
    }
}
