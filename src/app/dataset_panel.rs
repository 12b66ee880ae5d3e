//! Step 1: the dataset. Drop a folder (sub-folders = classes) or a .zip, pick a folder, add loose images to a
//! class, or load the bundled sample. Shows each class with its count and thumbnails, and every rejected file.

use leptos::html;
use leptos::prelude::*;
use web_sys::DragEvent;

use super::Progress;
use super::files::{PickedFile, entries_from_drop, files_from_list, walk_entries};
use super::session::{self, Target};
use super::state::{Phase, Ui};

#[component]
pub fn DatasetPanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let dragging = RwSignal::new(false);
    let folder_input: NodeRef<html::Input> = NodeRef::new();
    let zip_input: NodeRef<html::Input> = NodeRef::new();

    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if ui.phase.get_untracked().busy() {
            return;
        }
        let Some(transfer) = ev.data_transfer() else { return };
        let (entries, loose) = entries_from_drop(&transfer);
        leptos::task::spawn_local(async move {
            let (mut files, problems) = walk_entries(entries).await;
            files.extend(loose.into_iter().map(|file| PickedFile {
                path: file.name(),
                file,
            }));
            session::ingest(ui, files, problems, Target::Folders, "Dropped files".into()).await;
        });
    };
    // Both pickers hand over files laid out like a folder drop (a zip is unpacked, loose images need folders).
    let picked = move |input: NodeRef<html::Input>, source: &'static str| {
        let Some(input) = input.get() else { return };
        let Some(list) = input.files() else { return };
        let files = files_from_list(&list);
        input.set_value("");
        leptos::task::spawn_local(session::ingest(ui, files, Vec::new(), Target::Folders, source.into()));
    };
    let on_folder = move |_| picked(folder_input, "Chosen folder");
    let on_zip = move |_| picked(zip_input, "Chosen files");
    let busy = move || ui.phase.get().busy();
    let loading = move || match ui.phase.get() {
        Phase::Loading { done, total } => Some((done, total)),
        _ => None,
    };
    let images = move || ui.images();
    let classes = move || ui.classes.with(|c| c.len());

    view! {
        <section class="panel" aria-labelledby="dataset-title">
            <h2 id="dataset-title">"1. Your images"</h2>
            <div
                class="dropzone"
                class:dragging=move || dragging.get()
                data-testid="dataset-dropzone"
                on:dragover=move |ev: DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <p><strong>"Drop a folder here"</strong>" — one sub-folder per class (e.g. "<code>"cats/"</code>", "<code>"dogs/"</code>") — or a "<code>".zip"</code>" with the same layout."</p>
                <div class="actions">
                    <label class="button">
                        "Choose a folder…"
                        <input type="file" class="visually-hidden" data-testid="dataset-input" node_ref=folder_input
                            prop:webkitdirectory=true multiple on:change=on_folder disabled=busy />
                    </label>
                    <label class="button">
                        "Choose a .zip…"
                        <input type="file" class="visually-hidden" data-testid="zip-input" node_ref=zip_input
                            accept=".zip,application/zip" multiple on:change=on_zip disabled=busy />
                    </label>
                    <button type="button" data-testid="sample-button" disabled=busy
                        on:click=move |_| { leptos::task::spawn_local(session::load_sample(ui)); }>
                        "Try the sample dataset (36 photos, 3 classes)"
                    </button>
                </div>
            </div>
            {move || loading().map(|(done, total)| view! {
                <Progress label=format!("Reading images: {done} / {total}")
                    value=Some(done as f64 / total.max(1) as f64) />
            })}
            <p class="notice" role="status" aria-live="polite">{move || ui.notice.get()}</p>
            <div class="summary" data-testid="dataset-summary" data-images=images data-classes=classes>
                {move || if images() == 0 {
                    "No images yet.".to_string()
                } else {
                    format!(
                        "{} image{} in {} class{}",
                        images(),
                        if images() == 1 { "" } else { "s" },
                        classes(),
                        if classes() == 1 { "" } else { "es" }
                    )
                }}
                <Show when=move || { images() > 0 }>
                    <button type="button" class="link" disabled=busy on:click=move |_| session::clear_dataset(ui)>"Clear all"</button>
                </Show>
            </div>
            <ul class="classes">
                {move || ui.classes.get().into_iter().enumerate().map(|(i, class)| view! {
                    <ClassCard index=i name=class.name count=class.count thumbnails=class.thumbnails />
                }).collect_view()}
                <NewClassCard />
            </ul>
            <ImagenetView />
            <FileErrors />
        </section>
    }
}

#[component]
fn ClassCard(index: usize, name: String, count: usize, thumbnails: Vec<String>) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let add_input: NodeRef<html::Input> = NodeRef::new();
    let on_add = {
        let class = name.clone();
        move |_| add_loose_images(ui, add_input, class.clone())
    };
    // Images dropped on a class card go into that class (folders too: all their images).
    let on_drop = {
        let class = name.clone();
        move |ev: DragEvent| {
            ev.prevent_default();
            ev.stop_propagation();
            if ui.phase.get_untracked().busy() {
                return;
            }
            let Some(transfer) = ev.data_transfer() else { return };
            let (entries, loose) = entries_from_drop(&transfer);
            let class = class.clone();
            leptos::task::spawn_local(async move {
                let (mut files, problems) = walk_entries(entries).await;
                files.extend(loose.into_iter().map(|file| PickedFile {
                    path: file.name(),
                    file,
                }));
                let source = format!("Added to {class}");
                session::ingest(ui, files, problems, Target::Class(class), source).await;
            });
        }
    };
    let rename_id = format!("class-name-{index}");
    let too_few = count < 2;
    view! {
        <li class="class-card" data-testid="class-card" data-class=name.clone() data-count=count
            on:dragover=move |ev: DragEvent| ev.prevent_default() on:drop=on_drop>
            <div class="class-head">
                <label for=rename_id.clone() class="visually-hidden">{format!("Name of class {}", index + 1)}</label>
                <input id=rename_id type="text" value=name.clone() maxlength="64"
                    disabled=move || ui.phase.get().busy()
                    on:change=move |ev| session::rename_class(ui, index, event_target_value(&ev)) />
                <span class="count" class:warn=too_few>{format!("{count} image{}", if count == 1 { "" } else { "s" })}</span>
            </div>
            <div class="thumbs">
                {thumbnails.into_iter().enumerate().map(|(j, src)| {
                    let label = format!("What the pretrained model sees in image {} of {}", j + 1, name.clone());
                    view! {
                        <button type="button" class="thumb" title=label.clone() aria-label=label
                            on:click=move |_| { leptos::task::spawn_local(session::show_imagenet(ui, index, j)); }>
                            <img src=src alt="" width="64" height="64" />
                        </button>
                    }
                }).collect_view()}
            </div>
            <div class="class-actions">
                <label class="button small">
                    "Add images…"
                    <input type="file" class="visually-hidden" accept="image/*" multiple node_ref=add_input
                        on:change=on_add disabled=move || ui.phase.get().busy() />
                </label>
                <button type="button" class="small danger" aria-label=format!("Remove class {name}")
                    disabled=move || ui.phase.get().busy()
                    on:click=move |_| session::remove_class(ui, index)>"Remove"</button>
            </div>
        </li>
    }
}

#[component]
fn FileErrors() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let errors = move || {
        ui.file_errors
            .get()
            .into_iter()
            .filter(|e| !e.warning)
            .collect::<Vec<_>>()
    };
    let warnings = move || {
        ui.file_errors
            .get()
            .into_iter()
            .filter(|e| e.warning)
            .collect::<Vec<_>>()
    };
    view! {
        <Show when=move || !ui.file_errors.with(|e| e.is_empty())>
            <details class="file-errors" open>
                <summary>{move || format!("{} file(s) skipped", errors().len())}</summary>
                <ul data-testid="file-errors" role="list">
                    {move || errors().into_iter().map(|e| view! {
                        <li class="error"><code>{e.file}</code>": "{e.problem}</li>
                    }).collect_view()}
                </ul>
                <ul class="warnings" role="list">
                    {move || warnings().into_iter().map(|e| view! {
                        <li class="warning"><code>{e.file}</code>": "{e.problem}</li>
                    }).collect_view()}
                </ul>
            </details>
        </Show>
    }
}

/// The pretrained model's ImageNet top-5 for the thumbnail the user clicked.
#[component]
fn ImagenetView() -> impl IntoView {
    let ui = expect_context::<Ui>();
    move || {
        ui.imagenet.get().map(|(name, top)| {
            view! {
                <div class="imagenet" role="status" data-testid="imagenet-top5">
                    <strong>{format!("Before fine-tuning, the ImageNet model sees in {name}: ")}</strong>
                    <ol>
                        {top.into_iter().map(|(label, p)| view! { <li>{format!("{label} ({:.0}%)", p * 100.0)}</li> }).collect_view()}
                    </ol>
                    <button type="button" class="link" on:click=move |_| ui.imagenet.set(None)>"Close"</button>
                </div>
            }
        })
    }
}

/// Loose images from a picker into `class` (created if new).
fn add_loose_images(ui: Ui, input: NodeRef<html::Input>, class: String) {
    let Some(input) = input.get() else { return };
    let Some(list) = input.files() else { return };
    let files = files_from_list(&list)
        .into_iter()
        .map(|f| PickedFile {
            path: f.file.name(),
            file: f.file,
        })
        .collect();
    input.set_value("");
    let source = format!("Added to {class}");
    leptos::task::spawn_local(session::ingest(ui, files, Vec::new(), Target::Class(class), source));
}

/// Starts a class from loose images: type a name, then pick its images.
#[component]
fn NewClassCard() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let name = RwSignal::new(String::new());
    let input: NodeRef<html::Input> = NodeRef::new();
    let disabled = move || ui.phase.get().busy() || name.with(|n| n.trim().is_empty());
    view! {
        <li class="class-card new-class">
            <label for="new-class-name">"New class from loose images"</label>
            <input id="new-class-name" type="text" maxlength="64" placeholder="class name, e.g. cats"
                prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            <label class="button small" class:disabled=disabled>
                "Add images…"
                <input type="file" class="visually-hidden" accept="image/*" multiple node_ref=input disabled=disabled
                    on:change=move |_| { add_loose_images(ui, input, name.get_untracked().trim().to_string()); name.set(String::new()); } />
            </label>
        </li>
    }
}
