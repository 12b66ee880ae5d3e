//! The held-out images behind the confusion matrix: by default the ones the kept model got wrong, or those of
//! the cell picked in the matrix. Each shows its thumbnail, true and predicted class and the confidence; one
//! click moves a mislabelled image to the class the model saw (the model is then stale, as after any change).

use std::collections::HashMap;

use leptos::prelude::*;

use super::ErrorLine;
use super::dataset_flow::DatasetFlow;
use super::error::AppError;
use super::training_flow::TrainingFlow;

/// Most images listed at once (the rest are counted).
const MOST: usize = 60;

/// Where the image is now.
#[derive(Clone, Debug, PartialEq)]
enum Now {
    /// Still in its true class: it can be moved.
    InClass,
    MovedTo(String),
    /// Removed from the dataset since.
    Gone,
}

#[derive(Clone, Debug, PartialEq)]
struct Item {
    /// Position in the report's predictions: stable for one model.
    index: usize,
    key: u64,
    truth: String,
    predicted: String,
    confidence: f32,
    now: Now,
    /// The image's file name, while it is in the dataset.
    file: Option<String>,
}

#[component]
pub fn Mistakes(selected: RwSignal<Option<(usize, usize)>>) -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let dataset = expect_context::<DatasetFlow>();
    let error = RwSignal::new(None::<AppError>);
    // Which class holds each image now, and its file name there, by pixel key.
    let class_of = Memo::new(move |_| {
        dataset.dataset.with(|d| {
            d.classes
                .iter()
                .flat_map(|c| {
                    c.samples
                        .iter()
                        .map(move |s| (s.key(), (c.name.clone(), s.name.clone())))
                })
                .collect::<HashMap<u64, (String, String)>>()
        })
    });
    let items = Memo::new(move |_| {
        let cell = selected.get();
        training.trained.with(|t| {
            let Some(t) = t else { return Vec::new() };
            let report = &t.trained.report;
            let label = |i: usize| report.labels.get(i).cloned().unwrap_or_default();
            report
                .predictions
                .iter()
                .enumerate()
                .filter(|(_, p)| match cell {
                    Some((truth, predicted)) => p.truth == truth && p.predicted == predicted,
                    None => p.truth != p.predicted,
                })
                .map(|(index, p)| {
                    let truth = label(p.truth);
                    let (now, file) = class_of.with(|c| match c.get(&p.key) {
                        Some((class, file)) if *class == truth => (Now::InClass, Some(file.clone())),
                        Some((class, file)) => (Now::MovedTo(class.clone()), Some(file.clone())),
                        None => (Now::Gone, None),
                    });
                    Item {
                        index,
                        key: p.key,
                        truth,
                        predicted: label(p.predicted),
                        confidence: p.confidence,
                        now,
                        file,
                    }
                })
                .collect::<Vec<_>>()
        })
    });
    // Thumbnails of the images listed, made once (shared with the class cards; read back from storage).
    Effect::new(move |_| {
        let keys: Vec<u64> = items.with(|i| i.iter().take(MOST).map(|item| item.key).collect());
        leptos::task::spawn_local(dataset.make_thumbnails(keys));
    });
    let thumbnail = move |key: u64| {
        dataset.thumbnails_made.track();
        dataset.thumbnails.with_value(|t| t.get(&key).cloned())
    };
    let title = move || match selected.get() {
        None => "Held-out images the model got wrong".to_string(),
        Some((truth, predicted)) => training.trained.with(|t| {
            let labels = t.as_ref().map(|t| t.trained.report.labels.clone()).unwrap_or_default();
            let name = |i: usize| labels.get(i).cloned().unwrap_or_default();
            format!("Held-out {} predicted as {}", name(truth), name(predicted))
        }),
    };
    let shown = move || items.with(|i| i.iter().take(MOST).cloned().collect::<Vec<_>>());
    let more = move || items.with(|i| i.len().saturating_sub(MOST));
    let row = move |item: Item| {
        let wrong = item.truth != item.predicted;
        let alt = match &item.file {
            Some(file) => format!("{file}, held-out image of {}", item.truth),
            None => format!("Held-out image of {}", item.truth),
        };
        let (key, truth, predicted) = (item.key, item.truth.clone(), item.predicted.clone());
        let action = match (&item.now, wrong) {
            (Now::InClass, true) => {
                let label = format!("Move to {}", item.predicted);
                view! {
                    <button type="button" class="small" data-testid="move-image"
                        on:click=move |_| error.set(dataset.move_image(key, &truth, &predicted).err())>{label}</button>
                }
                .into_any()
            }
            (Now::MovedTo(class), _) => view! { <span class="moved">{format!("Moved to {class}")}</span> }.into_any(),
            (Now::Gone, _) => view! { <span class="moved">"Removed since"</span> }.into_any(),
            (Now::InClass, false) => ().into_any(),
        };
        view! {
            <li class="mistake" data-testid={if wrong { "mistake" } else { "held-out-image" }}
                data-truth=item.truth.clone() data-predicted=item.predicted.clone()>
                {move || thumbnail(key).map(|src| view! { <img src=src alt=alt.clone() width="64" height="64" /> })}
                <span class="file" data-testid="mistake-file" title=item.file.clone()>{item.file.clone()}</span>
                <span class="truth">"True: "<strong>{item.truth.clone()}</strong></span>
                <span class="predicted">{format!("Predicted: {} ({:.0}%)", item.predicted, item.confidence * 100.0)}</span>
                {action}
            </li>
        }
    };
    view! {
        <div class="mistakes" data-testid="mistakes" aria-labelledby="mistakes-title">
            <h3 id="mistakes-title">{title}</h3>
            <Show when=move || selected.with(Option::is_some)>
                <button type="button" class="small" on:click=move |_| selected.set(None)>"Show all mistakes"</button>
            </Show>
            <Show when=move || items.with(Vec::is_empty)>
                <p>{move || if selected.with(Option::is_some) { "No held-out images in this cell." } else { "No mistakes on the held-out images." }}</p>
            </Show>
            <ul class="mistake-list">
                <For each=shown key=|item: &Item| (item.index, format!("{:?}", item.now)) children=row />
            </ul>
            <Show when=move || { more() > 0 }>
                <p>{move || format!("and {} more", more())}</p>
            </Show>
            <ErrorLine error=error test_id="mistakes-error" />
        </div>
    }
}
