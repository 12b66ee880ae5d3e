//! What to fine-tune: the mode (head only, last blocks, LoRA, Auto), its size, the epochs and augmentation.
//! Each field is bound to `TrainOptions` (saved as it changes), like the options form.

use ajuste::options::{FinetuneChoice, OptionField, Strength, TrainOptions};
use leptos::prelude::*;

use super::options_form::NumberField;

use super::training_flow::TrainingFlow;

/// A mode picked in the menu, keeping the blocks and rank already set.
fn choice(name: &str, blocks: usize, rank: usize) -> FinetuneChoice {
    FinetuneChoice::named(name, blocks, rank).unwrap_or_default()
}

fn blocks_of(o: &TrainOptions) -> usize {
    match o.finetune {
        FinetuneChoice::LastBlocks { blocks } | FinetuneChoice::Lora { blocks, .. } => blocks,
        _ => FinetuneChoice::BLOCKS,
    }
}

fn rank_of(o: &TrainOptions) -> usize {
    match o.finetune {
        FinetuneChoice::Lora { rank, .. } => rank,
        _ => FinetuneChoice::RANK,
    }
}

fn help(name: &str) -> &'static str {
    match name {
        "head" => {
            "Trains only a new last layer on features of the frozen network. Fastest (seconds); good when \
                   your images look like everyday photos."
        }
        "last-blocks" => {
            "Also retrains the last blocks of the network itself. Slower; can adapt to unusual \
                          images, but needs more images to avoid overfitting."
        }
        "lora" => {
            "Adds small trainable adapters (LoRA) to the last blocks and trains them with the new layer. \
                   Slower than the head alone; adapts the network while changing few numbers."
        }
        _ => {
            "Trains the head alone first, then LoRA on the last 8 blocks, and keeps whichever has the lower \
              loss on the held-out validation images. Takes as long as both."
        }
    }
}

#[component]
pub fn FinetuneForm() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let mode = move || training.options.with(|o| o.finetune.name());
    let deep = move || mode() != "head";
    let sized = move || matches!(mode(), "last-blocks" | "lora");
    let running = move || training.is_running();
    let augmenting = move || training.options.with(|o| o.deep.augment.enabled);
    view! {
        <fieldset class="finetune">
            <legend>"What to train"</legend>
            <div class="fields">
                <div class="field wide">
                    <label for="finetune-mode">"Fine-tuning mode"</label>
                    <select id="finetune-mode" data-testid="finetune-mode" aria-describedby="finetune-mode-help"
                        prop:value=mode disabled=running
                        on:change=move |ev| {
                            let name = event_target_value(&ev);
                            training.options.update(|o| o.finetune = choice(&name, blocks_of(o), rank_of(o)));
                        }>
                        <option value="auto">"Auto: try both, keep the better"</option>
                        <option value="head">"Head only (fastest)"</option>
                        <option value="lora">"LoRA adapters on the last blocks"</option>
                        <option value="last-blocks">"Retrain the last blocks"</option>
                    </select>
                    <small id="finetune-mode-help">{move || help(mode())}</small>
                </div>
                <Show when=sized>
                    <NumberField id="finetune-blocks" testid="finetune-blocks" field=OptionField::Blocks label="Blocks to train" whole=true
                        help="How many of the network's 16 blocks, counted from the end (1–16; 8 is a good start)."
                        get=|o| blocks_of(o).to_string()
                        set=|o, v| o.finetune = choice(o.finetune.name(), count(v), rank_of(o)) />
                </Show>
                <Show when=move || mode() == "lora">
                    <NumberField id="lora-rank" testid="lora-rank" field=OptionField::LoraRank label="LoRA rank" whole=true
                        help="Size of each adapter (1–256): larger adapts more and trains slower (16 is a good start)."
                        get=|o| rank_of(o).to_string()
                        set=|o, v| o.finetune = choice("lora", blocks_of(o), count(v)) />
                </Show>
                <NumberField id="opt-epochs" testid="epochs" field=OptionField::Epochs label="Epochs" whole=true
                    help="Passes over the training images, for each run (1–10000). Training stops early when the \
                          validation loss stops improving."
                    get=|o| o.epochs.to_string() set=|o, v| o.epochs = count(v) />
                <Show when=deep>
                    <NumberField id="opt-budget" testid="budget" field=OptionField::Budget label="Time budget (minutes)"
                        help="Most wall-clock time for the deeper run (LoRA or last blocks), its preparation included: it \
                              stops when the next epoch would not fit and keeps its best (0: no limit; default 10)."
                        get=|o| minutes(o.deep.budget_seconds)
                        set=|o, v| o.deep.budget_seconds = (v.max(0.0) * 60.0).round().min(u32::MAX as f64) as u32 />
                    <div class="field">
                        <label>
                            <input type="checkbox" data-testid="augment" aria-describedby="augment-help"
                                prop:checked=move || training.options.with(|o| o.deep.augment.enabled)
                                disabled=running
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    training.options.update(|o| o.deep.augment.enabled = on);
                                } />
                            " Vary the training images"
                        </label>
                        <small id="augment-help">"Random crops, small rotations, brightness and contrast: helps the deeper modes generalise. A few variations of each image are prepared once and taken in turn, so it costs little time."</small>
                    </div>
                    <Show when=augmenting>
                        <div class="field">
                            <label for="augment-strength">"How much to vary"</label>
                            <select id="augment-strength" data-testid="augment-strength"
                                aria-describedby="augment-strength-help" disabled=running
                                prop:value=move || training.options.with(|o| o.deep.augment.strength.name())
                                on:change=move |ev| {
                                    if let Some(s) = Strength::from_name(&event_target_value(&ev)) {
                                        training.options.update(|o| o.deep.augment = o.deep.augment.clone().with_strength(s));
                                    }
                                }>
                                <option value="light">"Light"</option>
                                <option value="medium">"Medium"</option>
                                <option value="strong">"Strong"</option>
                            </select>
                            <small id="augment-strength-help">{move || strength_help(
                                training.options.with(|o| o.deep.augment.strength))}</small>
                        </div>
                        <div class="field">
                            <label>
                                <input type="checkbox" data-testid="augment-flip" aria-describedby="augment-flip-help"
                                    prop:checked=move || training.options.with(|o| o.deep.augment.horizontal_flip)
                                    disabled=running
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        training.options.update(|o| o.deep.augment.horizontal_flip = on);
                                    } />
                                " Also mirror left–right"
                            </label>
                            <small id="augment-flip-help">"Off by default. Only for images whose mirror image is still the same class (animals, objects); never for letters, digits or text."</small>
                        </div>
                    </Show>
                </Show>
            </div>
        </fieldset>
    }
}

fn strength_help(strength: Strength) -> &'static str {
    match strength {
        Strength::Light => "Crops of 85–100 % of the image, rotations up to 5°, brightness and contrast ±10 %.",
        Strength::Medium => "Crops of 70–100 % of the image, rotations up to 10°, brightness and contrast ±20 %.",
        Strength::Strong => "Crops of 50–100 % of the image, rotations up to 20°, brightness and contrast ±30 %.",
    }
}

/// Seconds as the minutes the field shows: 600 → "10", 90 → "1.5".
fn minutes(seconds: u32) -> String {
    let m = seconds as f64 / 60.0;
    format!("{}", (m * 100.0).round() / 100.0)
}

/// A count the field has read (a whole number, 0 or more) as the options hold it.
fn count(v: f64) -> usize {
    v.max(0.0) as usize
}
