//! One class: its name (renamable), count, thumbnails (click: what the pretrained model sees), images added by
//! picker or drop, removal. Keyed by the class id, so a card stays with its class through renames and removals.

use ajuste::data::ClassId;
use leptos::html;
use leptos::prelude::*;
use web_sys::DragEvent;

use super::dataset_flow::{DatasetFlow, Target};
use super::dataset_panel::{Preview, ingest_drop, ingest_picked};

#[component]
pub fn ClassCard(id: ClassId) -> impl IntoView {
    let dataset = expect_context::<DatasetFlow>();
    let preview = expect_context::<Preview>().0;
    let view = Memo::new(move |_| dataset.classes.with(|c| c.iter().find(|c| c.id == id).cloned()));
    let name = move || view.with(|v| v.as_ref().map(|v| v.name.clone()).unwrap_or_default());
    let count = move || view.with(|v| v.as_ref().map_or(0, |v| v.count));
    let loading = move || dataset.loading.get().is_some();
    let add_input: NodeRef<html::Input> = NodeRef::new();
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        ev.stop_propagation();
        if !loading() {
            let class = name();
            ingest_drop(dataset, &ev, Target::Class(class.clone()), format!("Added to {class}"));
        }
    };
    let on_rename = move |ev: leptos::ev::Event| {
        let typed = event_target_value(&ev);
        if dataset.rename(id, &typed).is_err() {
            // Refused: the box shows the name the class still has.
            let input: web_sys::HtmlInputElement = event_target(&ev);
            input.set_value(&name());
        }
    };
    let rename_id = format!("class-name-{id:?}");
    view! {
        <li class="class-card" data-testid="class-card" data-class=name data-count=count
            on:dragover=move |ev: DragEvent| ev.prevent_default() on:drop=on_drop>
            <div class="class-head">
                <label for=rename_id.clone() class="visually-hidden">{move || format!("Name of class {}", name())}</label>
                <input id=rename_id type="text" prop:value=name on:change=on_rename data-testid="class-name" />
                <span class="count" class:warn=move || count() < 2>
                    {move || format!("{} image{}", count(), if count() == 1 { "" } else { "s" })}
                </span>
            </div>
            <div class="thumbs">
                {move || view.get().map(|v| v.thumbnails.into_iter().map(|(j, src)| {
                    let label = format!("What the pretrained model sees in image {} of {}", j + 1, v.name);
                    view! {
                        <button type="button" class="thumb" title=label.clone() aria-label=label
                            on:click=move |_| { preview.dispatch_local((id, j)); }>
                            <img src=src alt="" width="64" height="64" />
                        </button>
                    }
                }).collect_view())}
            </div>
            <div class="class-actions">
                <label class="button small">
                    "Add images…"
                    <input type="file" class="visually-hidden" accept="image/*" multiple node_ref=add_input disabled=loading
                        on:change=move |_| { let class = name(); ingest_picked(dataset, add_input, Target::Class(class.clone()), format!("Added to {class}")); } />
                </label>
                <button type="button" class="small danger" aria-label=move || format!("Remove class {}", name())
                    on:click=move |_| dataset.remove(id)>"Remove"</button>
            </div>
        </li>
    }
}

/// Starts a class from loose images: type a name, then pick its images.
#[component]
pub fn NewClassCard() -> impl IntoView {
    let dataset = expect_context::<DatasetFlow>();
    let name = RwSignal::new(String::new());
    let input: NodeRef<html::Input> = NodeRef::new();
    let disabled = move || dataset.loading.get().is_some() || name.with(|n| n.trim().is_empty());
    view! {
        <li class="class-card new-class">
            <label for="new-class-name">"New class from loose images"</label>
            <input id="new-class-name" type="text" placeholder="class name, e.g. cats" data-testid="new-class-name"
                prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            <label class="button small" class:disabled=disabled>
                "Add images…"
                <input type="file" class="visually-hidden" accept="image/*" multiple node_ref=input disabled=disabled
                    data-testid="new-class-input"
                    on:change=move |_| {
                        let class = name.get_untracked().trim().to_string();
                        ingest_picked(dataset, input, Target::Class(class.clone()), format!("Added to {class}"));
                        name.set(String::new());
                    } />
            </label>
        </li>
    }
}
