//! Step 2: options, Train / Stop, progress, and the live loss and accuracy charts.

use ajuste::train::TrainOptions;
use leptos::prelude::*;

use super::Progress;
use super::charts::{LineChart, Series};
use super::session;
use super::state::{ModelStatus, Phase, Ui};

/// A numeric option bound to one field of `TrainOptions`.
#[component]
fn NumberField(
    id: &'static str,
    label: &'static str,
    help: &'static str,
    step: &'static str,
    get: fn(&TrainOptions) -> f64,
    set: fn(&mut TrainOptions, f64),
) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let help_id = format!("{id}-help");
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id type="number" step=step aria-describedby=help_id.clone()
                prop:value=move || ui.options.with(|o| get(o).to_string())
                disabled=move || ui.phase.get().busy()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse::<f64>() {
                        ui.options.update(|o| set(o, v));
                        session::save_options(&ui.options.get_untracked());
                    }
                } />
            <small id=help_id>{help}</small>
        </div>
    }
}

#[component]
pub fn TrainPanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let ready = move || matches!(ui.model.get(), ModelStatus::Ready { .. });
    let can_train = move || ready() && !ui.phase.get().busy() && ui.images() > 0;
    let phase = move || ui.phase.get();
    let last = move || ui.history.with(|h| h.last().cloned());
    let status_text = move || match phase() {
        Phase::Idle | Phase::Loading { .. } => {
            if ready() {
                "Ready to train.".to_string()
            } else {
                "Waiting for the model…".to_string()
            }
        }
        Phase::Embedding {
            done,
            total,
            images_per_second,
        } => {
            format!(
                "Computing features with the frozen backbone: {done} / {total} images ({images_per_second:.1} images/s)"
            )
        }
        Phase::Training { epoch, epochs } => format!("Training the new head: epoch {epoch} / {epochs}"),
        Phase::Done => ui.results.with(|r| {
            r.as_ref().map_or("Done.".into(), |r| {
                format!(
                    "Done: {}. Kept the head of epoch {} (lowest validation loss {:.3}, accuracy {:.1}%).",
                    r.stop_reason,
                    r.best_epoch + 1,
                    r.val_loss,
                    r.val_accuracy * 100.0
                )
            })
        }),
        Phase::Error(e) => format!("Could not train: {e}"),
    };
    let progress = move || match phase() {
        Phase::Embedding { done, total, .. } => Some(("Features".to_string(), done as f64 / total.max(1) as f64)),
        Phase::Training { epoch, epochs } => Some(("Training".to_string(), epoch as f64 / epochs.max(1) as f64)),
        _ => None,
    };
    let loss_series = Signal::derive(move || {
        ui.history.with(|h| {
            vec![
                Series {
                    name: "training loss",
                    class: "train",
                    values: h.iter().map(|m| m.train_loss).collect(),
                },
                Series {
                    name: "validation loss",
                    class: "val",
                    values: h.iter().map(|m| m.val_loss).collect(),
                },
            ]
        })
    });
    let acc_series = Signal::derive(move || {
        ui.history.with(|h| {
            vec![
                Series {
                    name: "training accuracy",
                    class: "train",
                    values: h.iter().map(|m| m.train_accuracy).collect(),
                },
                Series {
                    name: "validation accuracy",
                    class: "val",
                    values: h.iter().map(|m| m.val_accuracy).collect(),
                },
            ]
        })
    });
    let best_epoch = Signal::derive(move || {
        ui.history.with(|h| {
            h.iter()
                .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
                .map(|m| m.epoch)
        })
    });
    let hidden = move || ui.options.with(|o| o.hidden_units > 0);
    let optimizer = move || {
        ui.options
            .with(|o| if o.decoupled_weight_decay { "adamw" } else { "adam" })
    };

    view! {
        <section class="panel" aria-labelledby="train-title">
            <h2 id="train-title">"2. Train"</h2>
            <details class="options">
                <summary>"Options"</summary>
                <div class="fields">
                    <NumberField id="opt-epochs" label="Epochs" help="Passes over the training images (1–1000)." step="1"
                        get=|o| o.epochs as f64 set=|o, v| o.epochs = v.max(0.0) as usize />
                    <NumberField id="opt-batch" label="Batch size" help="Images per update." step="1"
                        get=|o| o.batch_size as f64 set=|o, v| o.batch_size = v.max(0.0) as usize />
                    <NumberField id="opt-lr" label="Learning rate" help="Adam step size (default 0.001)." step="0.0001"
                        get=|o| o.learning_rate as f64 set=|o, v| o.learning_rate = v as f32 />
                    <NumberField id="opt-wd" label="Weight decay" help="Regularisation against overfitting." step="0.0001"
                        get=|o| o.weight_decay as f64 set=|o, v| o.weight_decay = v as f32 />
                    <NumberField id="opt-smooth" label="Label smoothing" help="0 to 0.5; softens overconfident targets." step="0.05"
                        get=|o| o.label_smoothing as f64 set=|o, v| o.label_smoothing = v as f32 />
                    <NumberField id="opt-val" label="Validation fraction" help="Share of each class held out (stratified)." step="0.05"
                        get=|o| o.val_fraction as f64 set=|o, v| o.val_fraction = v as f32 />
                    <NumberField id="opt-patience" label="Early-stopping patience" help="Stop after this many epochs without a lower validation loss (0: never)." step="1"
                        get=|o| o.patience as f64 set=|o, v| o.patience = v.max(0.0) as usize />
                    <NumberField id="opt-hidden" label="Hidden units" help="0: a linear head; otherwise a hidden layer with ReLU and dropout." step="16"
                        get=|o| o.hidden_units as f64 set=|o, v| o.hidden_units = v.max(0.0) as usize />
                    <Show when=hidden>
                        <NumberField id="opt-dropout" label="Dropout" help="Only with a hidden layer." step="0.05"
                            get=|o| o.dropout as f64 set=|o, v| o.dropout = v as f32 />
                    </Show>
                    <NumberField id="opt-seed" label="Seed" help="Same seed, same split and same result." step="1"
                        get=|o| o.seed as f64 set=|o, v| o.seed = v.max(0.0) as u64 />
                    <div class="field">
                        <label for="opt-optim">"Optimizer"</label>
                        <select id="opt-optim" prop:value=optimizer disabled=move || ui.phase.get().busy()
                            on:change=move |ev| {
                                let adamw = event_target_value(&ev) == "adamw";
                                ui.options.update(|o| o.decoupled_weight_decay = adamw);
                                session::save_options(&ui.options.get_untracked());
                            }>
                            <option value="adam">"Adam (L2 weight decay)"</option>
                            <option value="adamw">"AdamW (decoupled weight decay)"</option>
                        </select>
                    </div>
                    <button type="button" class="link" disabled=move || ui.phase.get().busy()
                        on:click=move |_| { ui.options.set(TrainOptions::default()); session::save_options(&TrainOptions::default()); }>
                        "Reset to defaults"
                    </button>
                </div>
            </details>
            <div class="actions">
                <button type="button" class="primary" data-testid="train-button" disabled=move || !can_train()
                    on:click=move |_| { leptos::task::spawn_local(session::train(ui)); }>
                    "Train"
                </button>
                <button type="button" data-testid="stop-button"
                    disabled=move || !matches!(phase(), Phase::Embedding { .. } | Phase::Training { .. })
                    on:click=move |_| session::request_stop()>
                    "Stop"
                </button>
            </div>
            <p class="status" class:error=move || matches!(phase(), Phase::Error(_)) role="status" aria-live="polite"
                data-testid="training-status"
                data-state=move || phase().state_name()
                data-epoch=move || last().map(|m| (m.epoch + 1).to_string()).unwrap_or_else(|| "0".into())
                data-val-loss=move || last().map(|m| m.val_loss.to_string()).unwrap_or_default()
                data-val-accuracy=move || last().map(|m| m.val_accuracy.to_string()).unwrap_or_default()>
                {status_text}
            </p>
            {move || progress().map(|(label, value)| view! { <Progress label=label value=Some(value) /> })}
            <div class="charts" data-testid="charts">
                <LineChart title="Loss" y_label="cross-entropy" series=loss_series y_range=None marker=best_epoch />
                <LineChart title="Accuracy" y_label="accuracy" series=acc_series y_range=Some((0.0, 1.0)) marker=best_epoch />
            </div>
        </section>
    }
}
