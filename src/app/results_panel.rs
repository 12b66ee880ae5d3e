//! Step 3: how good the kept head is on the validation images (confusion matrix, per-class accuracy), and the
//! downloads.

use leptos::prelude::*;

use super::session::{self, Download};
use super::state::Ui;

#[component]
pub fn ResultsPanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let done = move || ui.results.with(|r| r.is_some());
    let matrix = move || {
        ui.results.get().map(|r| {
            let max = r.confusion.iter().flatten().copied().max().unwrap_or(1).max(1);
            view! {
                <table class="confusion" data-testid="confusion-matrix">
                    <caption>"Validation images: rows are the true class, columns the predicted one"</caption>
                    <thead><tr><th scope="col">"true \\ predicted"</th>
                        {r.labels.iter().map(|l| view! { <th scope="col">{l.clone()}</th> }).collect_view()}
                        <th scope="col">"accuracy"</th></tr></thead>
                    <tbody>
                        {r.confusion.iter().enumerate().map(|(i, row)| view! {
                            <tr>
                                <th scope="row">{r.labels[i].clone()}</th>
                                {row.iter().enumerate().map(|(j, &n)| {
                                    let alpha = n as f32 / max as f32;
                                    let class = if i == j { "hit" } else { "miss" };
                                    view! { <td class=class style=format!("--a:{alpha:.2}")>{n}</td> }
                                }).collect_view()}
                                <td>{format!("{:.0}%", r.per_class_accuracy[i] * 100.0)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <p class="timings" data-testid="timings">
                    {format!(
                        "{} training / {} validation images. Features: {:.1} s ({:.1} images/s). Head training: {:.2} s.",
                        r.num_train, r.num_val, r.embed_seconds, r.images_per_second, r.train_seconds
                    )}
                </p>
            }
        })
    };
    view! {
        <section class="panel" aria-labelledby="results-title">
            <h2 id="results-title">"3. Results and download"</h2>
            <Show when=done fallback=|| view! { <p>"Train a model to see how it does on the held-out images and download it."</p> }>
                {matrix}
            </Show>
            <div class="actions downloads">
                <button type="button" class="primary" data-testid="export-button" disabled=move || !done()
                    on:click=move |_| session::export(ui, Download::Model)>"Download model.safetensors"</button>
                <button type="button" data-testid="export-head" disabled=move || !done()
                    on:click=move |_| session::export(ui, Download::Head)>"Head only"</button>
                <button type="button" data-testid="export-labels" disabled=move || !done()
                    on:click=move |_| session::export(ui, Download::Labels)>"labels.txt"</button>
                <button type="button" data-testid="export-config" disabled=move || !done()
                    on:click=move |_| session::export(ui, Download::Config)>"config.json"</button>
            </div>
            <p class="hint">"The full model loads in PyTorch with the reference module; see the README for a five-line example."</p>
        </section>
    }
}
