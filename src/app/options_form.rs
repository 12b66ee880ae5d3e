//! The training options form: each field bound to one field of `TrainOptions` (saved as they change).

use std::collections::BTreeMap;

use ajuste::options::{FinetuneChoice, OptionField, TrainOptions};
use leptos::prelude::*;

use super::error::AppError;
use super::training_flow::TrainingFlow;

/// Reads a field's text: a number, for `whole` fields a count (a whole number, 0 or more). A decimal comma reads
/// as a point: phones in many languages offer only the comma. `Err`: why not, in words.
fn read(text: &str, whole: bool) -> Result<f64, String> {
    let text = text.trim();
    let v = text
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            if text.is_empty() {
                "enter a number".to_string()
            } else {
                format!("“{text}” is not a number")
            }
        })?;
    if whole && (v.fract() != 0.0 || v < 0.0) {
        return Err(format!("“{text}” is not a whole number of 0 or more"));
    }
    Ok(v)
}

/// A numeric option; a `whole` one takes counts only. `get` formats the value as typed (an f32 prints as `0.001`, not as its f64 widening). What is
/// typed is read as it is typed: a number goes into the options at once, and its problem, or the text's when it is
/// not a number, shows under the field in the field's words (Train waits until none is left). `empty` is the
/// value an emptied box means, for a field whose empty box means its default.
#[component]
pub fn NumberField(
    id: &'static str,
    label: &'static str,
    #[prop(into)] help: String,
    #[prop(optional)] whole: bool,
    #[prop(optional)] testid: Option<&'static str>,
    /// The option this field sets, whose problems it shows.
    #[prop(optional)]
    field: Option<OptionField>,
    #[prop(optional)] empty: Option<f64>,
    get: fn(&TrainOptions) -> String,
    set: fn(&mut TrainOptions, f64),
) -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let (help_id, error_id) = (format!("{id}-help"), format!("{id}-error"));
    // A field hidden (its mode or hidden layer unpicked) takes its draft with it: a problem no one can see
    // must not keep Train waiting.
    on_cleanup(move || {
        training.drafts.try_update(|d| d.remove(id));
    });
    let problem = move || {
        let draft = training.drafts.with(|d| d.get(id).and_then(|d| d.unreadable.clone()));
        draft.or_else(|| {
            let field = field?;
            training.options.with(|o| {
                o.problems()
                    .into_iter()
                    .find(|p| p.field == field)
                    .map(|p| format!("{label} {}.", p.rule))
            })
        })
    };
    let on_input = move |text: String| {
        let read = match (text.trim().is_empty(), empty) {
            (true, Some(v)) => Ok(v),
            _ => read(&text, whole),
        };
        if let Ok(v) = read {
            training.options.update(|o| set(o, v));
        }
        let unreadable = read.err().map(|why| format!("{label}: {why}."));
        training.drafts.update(|d| {
            d.insert(id, Draft { text, unreadable });
        });
    };
    // Once the box is left, a number shows as the options hold it; text that is not one stays, with its problem.
    let on_change = move || {
        training.drafts.update(|d| {
            if d.get(id).is_some_and(|d| d.unreadable.is_none()) {
                d.remove(id);
            }
        })
    };
    let described = format!("{help_id} {error_id}");
    view! {
        <div class="field" class:invalid=move || problem().is_some()>
            <label for=id>{label}</label>
            <input id=id data-testid=testid type="text" inputmode=if whole { "numeric" } else { "decimal" }
                aria-describedby=described
                aria-invalid=move || problem().is_some().then_some("true")
                prop:value=move || {
                    training.drafts.with(|d| d.get(id).map(|d| d.text.clone()))
                        .unwrap_or_else(|| training.options.with(get))
                }
                disabled=move || training.is_running()
                on:input=move |ev| on_input(event_target_value(&ev))
                on:change=move |_| on_change() />
            <small id=help_id>{help}</small>
            <small class="field-error" id=error_id data-testid=format!("{id}-error") aria-live="polite">{problem}</small>
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
                <NumberField id="opt-batch" field=OptionField::BatchSize label="Batch size" help="Images per update (1–4096)." whole=true
                    get=|o| o.batch_size.to_string() set=|o, v| o.batch_size = v.max(0.0) as usize />
                <NumberField id="opt-lr" field=OptionField::LearningRate label="Learning rate" help="Step size of the new head (default 0.001; at most 1)."
                    get=|o| o.learning_rate.to_string() set=|o, v| o.learning_rate = v as f32 />
                <NumberField id="opt-smooth" field=OptionField::LabelSmoothing label="Label smoothing" help="0 to 0.5; softens overconfident targets."
                    get=|o| o.label_smoothing.to_string() set=|o, v| o.label_smoothing = v as f32 />
                <NumberField id="opt-val" field=OptionField::ValFraction label="Validation fraction" help="Share of each class held out (stratified)."
                    get=|o| o.val_fraction.to_string() set=|o, v| o.val_fraction = v as f32 />
                <NumberField id="opt-patience" label="Early-stopping patience" help="Stop after this many epochs without a lower validation loss (0: never)." whole=true
                    get=|o| o.patience.to_string() set=|o, v| o.patience = v.max(0.0) as usize />
                <NumberField id="opt-seed" label="Seed" help="Same seed, same split and same result." whole=true
                    get=|o| o.seed.to_string() set=|o, v| o.seed = v.max(0.0) as u64 />
                <Show when=head_run>
                    <p class="group" id="opt-head-group">"The head-only run (on fixed features)"</p>
                    <NumberField id="opt-wd" field=OptionField::HeadWeightDecay label="Weight decay" help="Regularisation against overfitting (0–1)."
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
                    <NumberField id="opt-hidden" field=OptionField::HiddenUnits label="Hidden units" help="0: a linear head; otherwise a hidden layer with ReLU and dropout (the deeper runs always train a linear head)." whole=true
                        get=|o| o.head.hidden_units.to_string() set=|o, v| o.head.hidden_units = v.max(0.0) as usize />
                    <Show when=hidden>
                        <NumberField id="opt-dropout" field=OptionField::Dropout label="Dropout" help="Only with a hidden layer."
                            get=|o| o.head.dropout.to_string() set=|o, v| o.head.dropout = v as f32 />
                    </Show>
                </Show>
                <Show when=deep_run>
                    <p class="group" id="opt-deep-group">"The deeper run (AdamW, warm-up then cosine decay)"</p>
                    <NumberField id="opt-backbone-lr" field=OptionField::BackboneLr empty=0.0 label="Backbone learning rate"
                        help="Step size of the network's own weights or adapters (empty or 0: 0.0001 for last blocks, 0.001 for LoRA)."
                        get=|o| o.deep.backbone_lr.map(|v| v.to_string()).unwrap_or_default()
                        set=|o, v| o.deep.backbone_lr = (v > 0.0).then_some(v as f32) />
                    <NumberField id="opt-deep-wd" field=OptionField::DeepWeightDecay label="Weight decay" help="AdamW's decoupled weight decay, on the head and the backbone (0–1; default 0.01)."
                        get=|o| o.deep.weight_decay.to_string() set=|o, v| o.deep.weight_decay = v as f32 />
                    <NumberField id="opt-warmup" field=OptionField::Warmup label="Warm-up" help="Share of the steps raising the learning rate from 0, before its cosine decay (0–0.5)."
                        get=|o| o.deep.warmup_fraction.to_string() set=|o, v| o.deep.warmup_fraction = v as f32 />
                </Show>
                <button type="button" class="link" disabled=move || training.is_running()
                    on:click=move |_| training.set_options(TrainOptions::default())>
                    "Reset to defaults"
                </button>
            </div>
        </details>
    }
}

/// Text typed into an option's field that the options do not show (yet): kept while it is typed, so the box is
/// not rewritten under the caret, and kept when it is not a number, so it stays in sight with its problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub text: String,
    /// Why the text cannot be read, in the field's words (`None`: it was read into the options).
    pub unreadable: Option<String>,
}

/// `text` with its first letter in upper case.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The options' side of the training flow: replacing them, and what in them keeps a run from starting.
impl TrainingFlow {
    /// Replaces every option (defaults, a project's): drafts and a refusal of the old options go with them.
    pub fn set_options(&self, options: TrainOptions) {
        self.options.set(options);
        self.drafts.set(BTreeMap::new());
        if self.error.with_untracked(|e| matches!(e, Some(AppError::Options(_)))) {
            self.error.set(None);
        }
    }

    /// What in the options keeps a run from starting, in words (`None`: nothing): Train's with the mode chosen, or
    /// *Continue training*'s (`head_only`: a head-only run, which the deeper options do not concern). Each field
    /// shows its own problem; this names the first, for the hint beside Train.
    pub fn options_blocker(&self, head_only: bool) -> Option<String> {
        if let Some(why) = self.drafts.with(|d| d.values().find_map(|d| d.unreadable.clone())) {
            return Some(why);
        }
        self.options.with(|o| {
            let problems = if head_only {
                TrainOptions {
                    finetune: FinetuneChoice::Head,
                    ..o.clone()
                }
                .problems()
            } else {
                o.problems()
            };
            problems.first().map(|p| {
                // Options no field shows (from a project saved by an older page): only a reset mends them.
                let mend = match p.field {
                    OptionField::LoraAlpha | OptionField::Augmentation => " Reset to defaults clears it.",
                    _ => "",
                };
                capitalised(&format!("{p}.{mend}"))
            })
        })
    }
}
