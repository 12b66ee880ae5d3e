//! Step 3: how good the kept head is on the validation images (confusion matrix, per-class accuracy; a cell
//! picked shows its images in the gallery under it, `mistakes.rs`), and the downloads. Both come from the same
//! kept model, so a download always matches what is shown here.

use ajuste::train::RunMode;
use leptos::prelude::*;

use super::ErrorLine;
use super::export_panel::ExportPanel;
use super::mistakes::Mistakes;
use super::model_flow::ModelFlow;
use super::training_flow::{Download, TrainingFlow};

#[component]
pub fn ResultsPanel() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let model = expect_context::<ModelFlow>();
    let done = move || training.trained.with(Option::is_some);
    // The matrix cell whose images the gallery shows (`None`: every mistake); a new model clears it.
    let selected = RwSignal::new(None::<(usize, usize)>);
    Effect::new(move |_| {
        training.trained.track();
        selected.set(None);
    });
    // Whether the confusion table is wider than its box (a phone): a hint then says it scrolls.
    let scroller = NodeRef::<leptos::html::Div>::new();
    let overflowing = RwSignal::new(false);
    let measure = move || {
        if let Some(el) = scroller.get_untracked() {
            overflowing.set(el.scroll_width() > el.client_width());
        }
    };
    Effect::new(move |_| {
        if scroller.get().is_some() {
            request_animation_frame(measure);
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());
    let matrix = move || {
        training.trained.get().map(|t| {
            if let Some(file) = &t.opened {
                let labels = &t.trained.report.labels;
                return view! {
                    <p data-testid="opened-model">
                        {format!(
                            "Opened from {file}: {} classes ({}). It was not trained here: there are no held-out \
                             results to show; try it or export it.",
                            labels.len(),
                            labels.join(", ")
                        )}
                    </p>
                }
                .into_any();
            }
            let r = &t.trained.report;
            let k = r.confusion.k;
            let max = r.confusion.counts.iter().copied().max().unwrap_or(1).max(1);
            let rows = (0..k).map(|i| {
                let cells = (0..k).map(|j| {
                    let n = r.confusion.counts[i * k + j];
                    let class = if i == j { "hit" } else { "miss" };
                    let label = format!("{n} held-out {} predicted as {}: show them", r.labels[i], r.labels[j]);
                    let pressed = move || (selected.get() == Some((i, j))).to_string();
                    let pick = move |_| selected.update(|s| *s = if *s == Some((i, j)) { None } else { Some((i, j)) });
                    view! {
                        <td class=class style=format!("--a:{:.2}", n as f32 / max as f32)>
                            <button type="button" class="cell" data-testid="confusion-cell" aria-label=label
                                aria-pressed=pressed on:click=pick>{n}</button>
                        </td>
                    }
                }).collect_view();
                view! {
                    <tr>
                        <th scope="row">{r.labels[i].clone()}</th>
                        {cells}
                        <td>{format!("{:.0}%", r.per_class_accuracy[i] * 100.0)}</td>
                    </tr>
                }
            }).collect_view();
            let timings = &r.timings;
            view! {
                <p class="table-caption" id="confusion-caption">{if r.num_val == 0 {
                    "Training images (none was held out): rows are the true class, columns the predicted one"
                } else {
                    "Validation images: rows are the true class, columns the predicted one"
                }}</p>
                // The caption stays outside the box that scrolls, so a phone shows it whole.
                <div class="table-scroll" node_ref=scroller role="region" aria-labelledby="confusion-caption" tabindex="0">
                    <table class="confusion" data-testid="confusion-matrix" aria-labelledby="confusion-caption">
                        <thead><tr><th scope="col">"true \\ predicted"</th>
                            {r.labels.iter().map(|l| view! { <th scope="col">{l.clone()}</th> }).collect_view()}
                            <th scope="col">"accuracy"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                <p class="hint" data-testid="table-scroll-hint" hidden=move || !overflowing.get()>
                    "The table is wider than the screen: scroll it sideways to see every class."
                </p>
                // The backbone's share of the feature time, for benchmarks (what the flow around it costs).
                <p class="timings" data-testid="timings" data-backbone-seconds=format!("{:.3}", timings.backbone_seconds)>
                    {format!(
                        "{} training / {} validation images.{} Training: {:.2} s{}.",
                        r.num_train,
                        r.num_val,
                        // Nothing embedded (a deeper mode alone, or every image cached): no feature time to show.
                        if timings.images_per_second > 0.0 {
                            let threads = match timings.embed_threads {
                                0 | 1 => String::new(),
                                n => format!(" on {n} threads"),
                            };
                            format!(
                                " Features: {:.1} s ({:.1} images/s{threads}).",
                                timings.embed_seconds, timings.images_per_second
                            )
                        } else {
                            String::new()
                        },
                        timings.train_seconds,
                        match timings.train_threads {
                            0 | 1 => String::new(),
                            n => format!(" on {n} threads"),
                        }
                    )}
                </p>
            }
            .into_any()
        })
    };
    let export = move |what: Download| move |_| training.export(&model, what);
    let lora = move || training.kept_mode() == Some(RunMode::Lora);
    view! {
        <section class="panel" aria-labelledby="results-title">
            <h2 id="results-title">"3. Results and download"</h2>
            <Show when=done fallback=|| view! { <p>"Train a model to see how it does on the held-out images and download it."</p> }>
                <Show when=move || training.stale.get()>
                    <p class="notice warn" role="status" data-testid="results-stale">
                        "These results and downloads are of the model trained before your images changed: retrain needed."
                    </p>
                </Show>
                {matrix}
                <Mistakes selected=selected />
            </Show>
            <div class="actions downloads">
                <button type="button" class="primary" data-testid="export-button" disabled=move || !done()
                    on:click=export(Download::Model)>"Download model.safetensors"</button>
                <Show when=lora>
                    <button type="button" data-testid="export-adapter"
                        title="The LoRA adapter for Hugging Face PEFT on timm's tf_efficientnet_lite0"
                        on:click=export(Download::Adapter)>"adapter_model.safetensors"</button>
                    <button type="button" data-testid="export-adapter-config"
                        on:click=export(Download::AdapterConfig)>"adapter_config.json"</button>
                </Show>
                <button type="button" data-testid="export-head" disabled=move || !done()
                    on:click=export(Download::Head)>"Head only"</button>
                <button type="button" data-testid="export-labels" disabled=move || !done()
                    on:click=export(Download::Labels)>"labels.txt"</button>
                <button type="button" data-testid="export-config" disabled=move || !done()
                    on:click=export(Download::Config)>"config.json"</button>
            </div>
            <ErrorLine error=training.export_error test_id="results-error" />
            <ExportPanel />
            <p class="hint">"The full model loads in PyTorch with the reference module; see the README for a five-line example."</p>
        </section>
    }
}
