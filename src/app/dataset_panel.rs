//! Step 1: the dataset. Drop a folder (sub-folders = classes) or a .zip, pick a folder, add loose images to a
//! class, or load the bundled sample. Shows each class with its count and thumbnails, and every rejected file.
//! Images may be added while a model trains (it trains on the images it started with).

use ajuste::data::ClassId;
use leptos::html;
use leptos::prelude::*;
use web_sys::DragEvent;

use super::class_card::{ClassCard, NewClassCard};
use super::dataset_flow::{DatasetFlow, Target};
use super::files::{PickedFile, entries_from_drop, files_from_list, walk_entries};
use super::model_flow::ModelFlow;
use super::{ErrorLine, Progress};

/// Files of a drop, folders walked; `target` says where they go.
pub fn ingest_drop(dataset: DatasetFlow, ev: &DragEvent, target: Target, source: String) {
    let Some(transfer) = ev.data_transfer() else { return };
    let (entries, loose) = entries_from_drop(&transfer);
    leptos::task::spawn_local(async move {
        let (mut files, problems) = walk_entries(entries).await;
        files.extend(loose.into_iter().map(|file| PickedFile {
            path: file.name(),
            file,
        }));
        dataset.ingest(files, problems, target, source).await;
    });
}

/// Files of a picker (then emptied, so the same files can be picked again).
pub fn ingest_picked(dataset: DatasetFlow, input: NodeRef<html::Input>, target: Target, source: String) {
    let Some(input) = input.get() else { return };
    let Some(list) = input.files() else { return };
    let mut files = files_from_list(&list);
    if matches!(target, Target::Class(_)) {
        // Loose images: only the file name counts.
        for f in &mut files {
            f.path = f.file.name();
        }
    }
    input.set_value("");
    leptos::task::spawn_local(dataset.ingest(files, Vec::new(), target, source));
}

#[component]
pub fn DatasetPanel() -> impl IntoView {
    let dataset = expect_context::<DatasetFlow>();
    let dragging = RwSignal::new(false);
    let folder_input: NodeRef<html::Input> = NodeRef::new();
    let zip_input: NodeRef<html::Input> = NodeRef::new();
    let loading = move || dataset.loading.get().is_some();
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if !loading() {
            ingest_drop(dataset, &ev, Target::Folders, "Dropped files".into());
        } else {
            dataset.notice.set(Some(
                "Still reading the last images: drop these again in a moment.".into(),
            ));
        }
    };
    let images = move || dataset.images();
    let classes = move || dataset.classes.with(Vec::len);
    let notice = move || {
        dataset.notice.get().or_else(|| {
            dataset.ingested.with(|i| {
                i.as_ref().map(|i| {
                    let (added, rejected, skipped) = (i.report.added, i.report.errors.len(), i.report.skipped);
                    if (added, rejected, skipped) == (0, 0, 0) {
                        return format!("{}: no images found.", i.source);
                    }
                    let mut parts = vec![format!("added {added} image{}", if added == 1 { "" } else { "s" })];
                    if skipped > 0 {
                        parts.push(format!("skipped {skipped} already loaded"));
                    }
                    if rejected > 0 {
                        parts.push(format!("rejected {rejected}"));
                    }
                    let below = if rejected + skipped > 0 { " (see below)" } else { "" };
                    format!("{}: {}{below}.", i.source, parts.join(", "))
                })
            })
        })
    };
    view! {
        <section class="panel" aria-labelledby="dataset-title">
            <h2 id="dataset-title">"1. Your images"</h2>
            <div class="dropzone" class:dragging=move || dragging.get() data-testid="dataset-dropzone"
                on:dragover=move |ev: DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop>
                <p><strong>"Drop a folder here"</strong>" — one sub-folder per class (e.g. "<code>"cats/"</code>", "<code>"dogs/"</code>") — or a "<code>".zip"</code>" with the same layout."</p>
                <div class="actions">
                    <label class="button">
                        "Choose a folder…"
                        <input type="file" class="visually-hidden" data-testid="dataset-input" node_ref=folder_input
                            prop:webkitdirectory=true multiple disabled=loading
                            on:change=move |_| ingest_picked(dataset, folder_input, Target::Folders, "Chosen folder".into()) />
                    </label>
                    <label class="button">
                        "Choose a .zip…"
                        <input type="file" class="visually-hidden" data-testid="zip-input" node_ref=zip_input
                            accept=".zip,application/zip" multiple disabled=loading
                            on:change=move |_| ingest_picked(dataset, zip_input, Target::Folders, "Chosen files".into()) />
                    </label>
                    <button type="button" data-testid="sample-button" disabled=loading
                        on:click=move |_| { leptos::task::spawn_local(dataset.load_sample()); }>
                        "Try the sample dataset (36 photos, 3 classes)"
                    </button>
                </div>
            </div>
            {move || dataset.loading.get().map(|(done, total)| view! {
                <Progress label=format!("Reading images: {done} / {total}") value=Some(done as f64 / total.max(1) as f64) />
            })}
            <p class="notice" role="status" aria-live="polite" data-testid="dataset-notice">{notice}</p>
            <ErrorLine error=dataset.error test_id="dataset-error" />
            <div class="summary" data-testid="dataset-summary" data-images=images data-classes=classes>
                {move || if images() == 0 {
                    "No images yet.".to_string()
                } else {
                    format!("{} image{} in {} class{}", images(), if images() == 1 { "" } else { "s" },
                        classes(), if classes() == 1 { "" } else { "es" })
                }}
                <Show when=move || { images() > 0 }>
                    <button type="button" class="link" disabled=loading on:click=move |_| dataset.clear()>"Clear all"</button>
                </Show>
            </div>
            <super::storage_use::StorageLine />
            <ul class="classes">
                <For each=move || dataset.classes.get() key=|class| class.id let:class>
                    <ClassCard id=class.id />
                </For>
                <NewClassCard />
            </ul>
            <ImagenetView />
            <FileErrors />
        </section>
    }
}

#[component]
fn FileErrors() -> impl IntoView {
    let dataset = expect_context::<DatasetFlow>();
    let list = move |warnings: bool| {
        dataset.ingested.with(|i| {
            i.as_ref()
                .map(|i| {
                    if warnings {
                        i.report.warnings.clone()
                    } else {
                        i.report.errors.clone()
                    }
                })
                .unwrap_or_default()
        })
    };
    let any = move || {
        dataset.ingested.with(|i| {
            i.as_ref()
                .is_some_and(|i| !i.report.errors.is_empty() || !i.report.warnings.is_empty())
        })
    };
    view! {
        <Show when=any>
            <details class="file-errors" open>
                <summary>{move || {
                    let skipped = dataset.ingested.with(|i| i.as_ref().map_or(0, |i| i.report.skipped));
                    format!("{} file(s) refused, {skipped} skipped as already loaded, {} remark(s)",
                        list(false).len(), list(true).len())
                }}</summary>
                <ul data-testid="file-errors" role="list">
                    {move || list(false).into_iter().map(|e| view! { <li class="error"><code>{e.file}</code>": "{e.problem}</li> }).collect_view()}
                </ul>
                <ul class="warnings" role="list">
                    {move || list(true).into_iter().map(|e| view! { <li class="warning"><code>{e.file}</code>": "{e.problem}</li> }).collect_view()}
                </ul>
            </details>
        </Show>
    }
}

/// What the pretrained model sees in a thumbnail the user clicked: its ImageNet top-5.
#[derive(Clone, Copy)]
pub struct Preview(pub Action<(ClassId, usize), Option<(String, Top5)>>);

/// The ImageNet top-5 (label, probability) of one image, or why it could not be computed.
pub type Top5 = Result<Vec<(String, f32)>, String>;

#[component]
fn ImagenetView() -> impl IntoView {
    let preview = expect_context::<Preview>().0;
    move || {
        match preview.value().get().flatten() {
        Some((name, Ok(top))) => Some(view! {
            <div class="imagenet" role="status" data-testid="imagenet-top5">
                <strong>{format!("Before fine-tuning, the ImageNet model sees in {name}: ")}</strong>
                <ol>
                    {top.into_iter().map(|(label, p)| view! { <li>{format!("{label} ({:.0}%)", p * 100.0)}</li> }).collect_view()}
                </ol>
                <button type="button" class="link" on:click=move |_| preview.value().set(None)>"Close"</button>
            </div>
        }.into_any()),
        Some((image, Err(why))) => Some(view! {
            <p class="notice error" role="alert">{super::error::AppError::Preview { image, why }.to_string()}</p>
        }.into_any()),
        None => None,
    }
    }
}

/// Creates the preview action (needs the model) and provides it to the cards.
pub fn provide_preview(model: ModelFlow, dataset: DatasetFlow) {
    let action = Action::new_local(move |(id, index): &(ClassId, usize)| {
        let sample = dataset.sample(*id, *index);
        async move {
            let (name, pixels) = sample.await?;
            Some((name, model.imagenet_top5(&pixels).await))
        }
    });
    provide_context(Preview(action));
}
