//! Save project / Open project: the images, their classes, the options and the kept model with its report in
//! one `.ajuste` file (`ajuste::project`), to carry to another browser or machine. Opening checks the whole
//! file first: a damaged or foreign one is refused with the reason, and what is loaded stays as it was.

use std::collections::HashMap;
use std::sync::Arc;

use ajuste::data::store::image_entry;
use ajuste::export;
use ajuste::predict::exported_model;
use ajuste::project::{self, EXTENSION, Project, ProjectModel};
use ajuste::protocol::ModelId;
use leptos::html;
use leptos::prelude::*;

use super::ErrorLine;
use super::browser::download;
use super::dataset_flow::DatasetFlow;
use super::error::AppError;
use super::files::{files_from_list, read_file, size_of};
use super::model_flow::ModelFlow;
use super::training_flow::{TrainedOn, TrainingFlow};
use ajuste::web::store;

/// The largest project file opened (the unpacked limit of `project::read` is the same).
const MAX_PROJECT_BYTES: f64 = (1u64 << 30) as f64;

/// The project as it is now, as `.ajuste` bytes. Images kept only in storage are read back from there.
async fn save(dataset: DatasetFlow, training: TrainingFlow, model: ModelFlow) -> Result<Vec<u8>, String> {
    let model = match training.trained.get_untracked() {
        Some(kept) => {
            let weights = model
                .engine
                .with_untracked(|e| e.as_ref().map(|e| e.weights.clone()))
                .ok_or("the model weights are not loaded yet")?;
            let trained = kept.trained.clone();
            Some(ProjectModel {
                weights: exported_model(&weights, &trained).map_err(|e| e.to_string())?,
                config: export::config_json_of(&trained.report),
                fingerprint: kept.fingerprint,
                trained,
            })
        }
        None => None,
    };
    let project = Project {
        dataset: (*dataset.dataset.get_untracked()).clone(),
        options: training.options.get_untracked(),
        model,
    };
    let in_storage: Vec<u64> = project
        .dataset
        .classes
        .iter()
        .flat_map(|c| &c.samples)
        .filter(|s| !s.in_memory())
        .map(|s| s.key())
        .collect();
    let mut stored = HashMap::new();
    if !in_storage.is_empty() {
        let cache = store::open().await?;
        for key in in_storage {
            let entry = image_entry(key);
            let png = store::get(&cache, &entry)
                .await?
                .ok_or_else(|| format!("{entry} is missing from the browser's storage"))?;
            stored.insert(key, png);
        }
    }
    // The dataset keeps prepared pixels only: every image goes in as its prepared PNG.
    project::write(&project, &HashMap::new(), &stored).map_err(|e| e.to_string())
}

/// Replaces what is loaded with an opened project.
fn apply(project: Project, file: &str, dataset: &DatasetFlow, training: &TrainingFlow) {
    let images = project.dataset.num_images();
    let classes = project.dataset.classes.len();
    let has_model = project.model.is_some();
    dataset.dataset.set(Arc::new(project.dataset));
    dataset.ingested.set(None);
    dataset.error.set(None);
    training.set_options(project.options);
    training.live.set(Vec::new());
    training.error.set(None);
    training.notice.set(None);
    training.trained.set(project.model.map(|m| {
        Arc::new(TrainedOn {
            id: ModelId::fresh(),
            trained: m.trained,
            fingerprint: m.fingerprint,
            opened: None,
        })
    }));
    dataset.notice.set(Some(format!(
        "Opened {file}: {images} images in {classes} classes{}.",
        if has_model { " and the trained model" } else { "" }
    )));
}

#[component]
pub fn ProjectBar() -> impl IntoView {
    let dataset = expect_context::<DatasetFlow>();
    let training = expect_context::<TrainingFlow>();
    let model = expect_context::<ModelFlow>();
    let error = RwSignal::new(None::<AppError>);
    let busy = move || training.running.with(Option::is_some) || dataset.loading.with(Option::is_some);
    let empty = move || dataset.images() == 0 && training.trained.with(Option::is_none);
    let saving = RwSignal::new(false);
    // What the last project file saved or opened here held (images, kept model): work that differs is unsaved,
    // and opening another project asks before replacing it.
    let state = move || {
        let images = dataset.dataset.with(|d| d.fingerprint());
        (images, training.trained.with(|t| t.as_ref().map(|t| t.id)))
    };
    let in_file = RwSignal::new(None::<(u64, Option<ModelId>)>);
    let unsaved = move || !empty() && in_file.get() != Some(state());
    // A project read and checked, waiting for the user to agree to replace unsaved work, with what was loaded
    // when the question was asked.
    let waiting = StoredValue::new_local(None::<(Project, (u64, Option<ModelId>))>);
    let asking = RwSignal::new(None::<String>);
    let replace = move || {
        let Some(name) = asking.get_untracked() else { return };
        asking.set(None);
        let mut taken = None;
        waiting.update_value(|w| taken = w.take());
        if let Some((project, asked)) = taken {
            // The question named what it would replace: anything added or trained since is not replaced unasked.
            if busy() || asked != state() {
                error.set(Some(AppError::ProjectOpen {
                    file: name,
                    why: "what is loaded here changed while you were asked; open it again to choose".into(),
                }));
                return;
            }
            apply(project, &name, &dataset, &training);
            in_file.set(Some(state()));
            error.set(None);
        }
    };
    let keep = move || {
        asking.set(None);
        waiting.set_value(None);
    };
    let on_save = move |_| {
        // While saving the button stays enabled, only marked aria-disabled, so the keyboard focus stays on it
        // (a disabled button drops it to the page); a second click is ignored here.
        if saving.get_untracked() {
            return;
        }
        saving.set(true);
        // What the file will hold: work added while it is written is not in it.
        let saved = state();
        leptos::task::spawn_local(async move {
            let outcome = save(dataset, training, model)
                .await
                .and_then(|bytes| download(&format!("project.{EXTENSION}"), &bytes, "application/zip"));
            if outcome.is_ok() {
                in_file.set(Some(saved));
            }
            error.set(outcome.err().map(AppError::ProjectSave));
            saving.set(false);
        });
    };
    let input: NodeRef<html::Input> = NodeRef::new();
    let on_open = move |_| {
        let Some(element) = input.get() else { return };
        let picked = element.files().and_then(|list| files_from_list(&list).pop());
        element.set_value("");
        let Some(picked) = picked else { return };
        let file = picked.path.clone();
        let refuse = move |why: String| {
            error.set(Some(AppError::ProjectOpen {
                file: file.clone(),
                why,
            }))
        };
        if busy() {
            return refuse("wait until the training or the images being read are done".into());
        }
        if size_of(&picked.file) > MAX_PROJECT_BYTES {
            return refuse(format!("it is larger than {} MB", MAX_PROJECT_BYTES / 1e6));
        }
        leptos::task::spawn_local(async move {
            let name = picked.path.clone();
            let opened = read_file(picked)
                .await
                .and_then(|input| project::read(&input.bytes).map_err(|e| e.to_string()));
            match opened {
                // Checked again: a training may have started while the file was read.
                Ok(_) if busy() => refuse("a training started meanwhile".into()),
                Ok(project) if unsaved() => {
                    waiting.set_value(Some((project, state())));
                    error.set(None);
                    asking.set(Some(name));
                }
                Ok(project) => {
                    apply(project, &name, &dataset, &training);
                    in_file.set(Some(state()));
                    error.set(None);
                }
                Err(why) => refuse(why),
            }
        });
    };
    view! {
        <nav class="project-bar" aria-label="Project">
            <button type="button" data-testid="save-project" disabled=move || busy() || empty()
                aria-disabled=move || saving.get().then_some("true")
                on:click=on_save aria-busy=move || saving.get().to_string()
                title="Images, classes, options and the trained model in one .ajuste file">"Save project"</button>
            <label class="button" class:disabled=busy>
                "Open project…"
                <input type="file" class="visually-hidden" accept=".ajuste,application/zip" node_ref=input
                    data-testid="open-project" disabled=busy on:change=on_open />
            </label>
            <ErrorLine error=error test_id="project-error" />
            {move || asking.get().map(|name| view! { <ReplaceQuestion name=name replace=replace keep=keep /> })}
        </nav>
    }
}

/// Asks before an opened project replaces work not saved in a project file; the keyboard focus starts on the
/// choice that loses nothing.
#[component]
fn ReplaceQuestion(
    name: String,
    replace: impl Fn() + Copy + 'static,
    keep: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let dataset = expect_context::<DatasetFlow>();
    let training = expect_context::<TrainingFlow>();
    let keep_button: NodeRef<html::Button> = NodeRef::new();
    Effect::new(move |_| {
        if let Some(button) = keep_button.get() {
            let _ = button.focus();
        }
    });
    let images = dataset.images();
    let what = match (images, training.trained.with_untracked(Option::is_some)) {
        (0, _) => "the trained model here".to_string(),
        (n, true) => format!("the {n} images and the trained model here"),
        (n, false) => format!("the {n} images here"),
    };
    view! {
        <div class="replace-question" role="alertdialog" aria-labelledby="replace-question-text" data-testid="project-replace">
            <p id="replace-question-text">
                {format!("Opening {name} replaces {what}, which are not saved in a project file. Replace them?")}
            </p>
            <button type="button" class="danger" data-testid="project-replace-confirm" on:click=move |_| replace()>
                {format!("Replace with {name}")}
            </button>
            <button type="button" data-testid="project-replace-cancel" node_ref=keep_button on:click=move |_| keep()>
                "Keep what is here"
            </button>
        </div>
    }
}
