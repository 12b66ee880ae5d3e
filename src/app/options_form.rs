//! The training options form: each field bound to one field of `TrainOptions` (saved as they change).

use ajuste::options::TrainOptions;
use leptos::prelude::*;

use super::training_flow::TrainingFlow;

/// A numeric option. `get` formats the value as typed (an f32 prints as `0.001`, not as its f64 widening).
#[component]
pub fn NumberField(
    id: &'static str,
    label: &'static str,
    #[prop(into)] help: String,
    step: &'static str,
    #[prop(optional)] testid: Option<&'static str>,
    #[prop(optional)] min: Option<&'static str>,
    get: fn(&TrainOptions) -> String,
    set: fn(&mut TrainOptions, f64),
) -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let help_id = format!("{id}-help");
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id data-testid=testid type="number" step=step min=min aria-describedby=help_id.clone()
                prop:value=move || training.options.with(get)
                disabled=move || training.is_running()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse::<f64>() {
                        training.options.update(|o| set(o, v));
                    }
                } />
            <small id=help_id>{help}</small>
        </div>
    }
}

/// Every option in the form applies to the chosen mode: the head-only run's (its weight decay, optimiser, hidden
/// layer) show for head only and Auto, the deeper runs' (backbone learning rate, their weight decay and warm-up)
/// for the deeper modes and Auto, each labelled with the run it sets when Auto runs both.
#[component]
pub fn OptionsForm() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let head_run = move || training.options.with(|o| o.finetune.trains_head_alone());
    let deep_run = move || training.options.with(|o| o.deep_mode().is_some());
    let hidden = move || training.options.with(|o| o.head.hidden_units > 0);
    let optimizer = move || {
        training
            .options
            .with(|o| if o.head.decoupled_weight_decay { "adamw" } else { "adam" })
    };
    view! {
        <details class="options">
            <summary>"Options"</summary>
            <div class="fields">
                <NumberField id="opt-batch" label="Batch size" help="Images per update (1–4096)." step="1"
                    get=|o| o.batch_size.to_string() set=|o, v| o.batch_size = v.max(0.0) as usize />
                <NumberField id="opt-lr" label="Learning rate" help="Step size of the new head (default 0.001; at most 1)." step="0.0001"
                    get=|o| o.learning_rate.to_string() set=|o, v| o.learning_rate = v as f32 />
                <NumberField id="opt-smooth" label="Label smoothing" help="0 to 0.5; softens overconfident targets." step="0.05"
                    get=|o| o.label_smoothing.to_string() set=|o, v| o.label_smoothing = v as f32 />
                <NumberField id="opt-val" label="Validation fraction" help="Share of each class held out (stratified)." step="0.05"
                    get=|o| o.val_fraction.to_string() set=|o, v| o.val_fraction = v as f32 />
                <NumberField id="opt-patience" label="Early-stopping patience" help="Stop after this many epochs without a lower validation loss (0: never)." step="1"
                    get=|o| o.patience.to_string() set=|o, v| o.patience = v.max(0.0) as usize />
                <NumberField id="opt-seed" label="Seed" help="Same seed, same split and same result." step="1"
                    get=|o| o.seed.to_string() set=|o, v| o.seed = v.max(0.0) as u64 />
                <Show when=head_run>
                    <p class="group" id="opt-head-group">"The head-only run (on fixed features)"</p>
                    <NumberField id="opt-wd" label="Weight decay" help="Regularisation against overfitting (0–1)." step="0.0001"
                        get=|o| o.head.weight_decay.to_string() set=|o, v| o.head.weight_decay = v as f32 />
                    <div class="field">
                        <label for="opt-optim">"Optimizer"</label>
                        <select id="opt-optim" prop:value=optimizer disabled=move || training.is_running()
                            on:change=move |ev| {
                                let adamw = event_target_value(&ev) == "adamw";
                                training.options.update(|o| o.head.decoupled_weight_decay = adamw);
                            }>
                            <option value="adam">"Adam (L2 weight decay)"</option>
                            <option value="adamw">"AdamW (decoupled weight decay)"</option>
                        </select>
                    </div>
                    <NumberField id="opt-hidden" label="Hidden units" help="0: a linear head; otherwise a hidden layer with ReLU and dropout (the deeper runs always train a linear head)." step="16"
                        get=|o| o.head.hidden_units.to_string() set=|o, v| o.head.hidden_units = v.max(0.0) as usize />
                    <Show when=hidden>
                        <NumberField id="opt-dropout" label="Dropout" help="Only with a hidden layer." step="0.05"
                            get=|o| o.head.dropout.to_string() set=|o, v| o.head.dropout = v as f32 />
                    </Show>
                </Show>
                <Show when=deep_run>
                    <p class="group" id="opt-deep-group">"The deeper run (AdamW, warm-up then cosine decay)"</p>
                    <NumberField id="opt-backbone-lr" label="Backbone learning rate"
                        help="Step size of the network's own weights or adapters (empty or 0: 0.0001 for last blocks, 0.001 for LoRA)." step="0.0001"
                        get=|o| o.deep.backbone_lr.map(|v| v.to_string()).unwrap_or_default()
                        set=|o, v| o.deep.backbone_lr = (v > 0.0).then_some(v as f32) />
                    <NumberField id="opt-deep-wd" label="Weight decay" help="AdamW's decoupled weight decay, on the head and the backbone (0–1; default 0.01)." step="0.001"
                        get=|o| o.deep.weight_decay.to_string() set=|o, v| o.deep.weight_decay = v as f32 />
                    <NumberField id="opt-warmup" label="Warm-up" help="Share of the steps raising the learning rate from 0, before its cosine decay (0–0.5)." step="0.01"
                        get=|o| o.deep.warmup_fraction.to_string() set=|o, v| o.deep.warmup_fraction = v as f32 />
                </Show>
                <button type="button" class="link" disabled=move || training.is_running()
                    on:click=move |_| training.options.set(TrainOptions::default())>
                    "Reset to defaults"
                </button>
            </div>
        </details>
    }
}
