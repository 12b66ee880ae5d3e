//! Try it's "none of these" threshold: suggested from the validation images (`ajuste::train::threshold`), moved
//! with a slider, kept with the model (its report's `none_threshold`, so it is saved, restored after a reload and
//! written into the exports' `config.json` and model card).

use std::sync::Arc;

use ajuste::train::threshold::{KEEP, effect, suggest};
use leptos::prelude::*;

use super::training_flow::TrainingFlow;

/// The threshold in force: the slider's value while it moves, else the model's.
#[derive(Clone, Copy)]
pub struct NoneOfThese {
    training: TrainingFlow,
    /// The slider's value while it is being moved (committed to the model when let go).
    moving: RwSignal<Option<f32>>,
    kept: Memo<Option<f32>>,
}

impl NoneOfThese {
    pub fn new(training: TrainingFlow) -> Self {
        Self {
            training,
            moving: RwSignal::new(None),
            kept: Memo::new(move |_| {
                training
                    .trained
                    .with(|t| t.as_ref().map(|t| t.trained.report.none_of_these()))
            }),
        }
    }

    pub fn value(&self) -> f32 {
        self.moving.get().or_else(|| self.kept.get()).unwrap_or(0.0)
    }

    /// Keeps `value` with the model (`None`: back to the suggestion).
    fn commit(&self, value: Option<f32>) {
        self.moving.set(None);
        self.training.trained.update(|t| {
            if let Some(t) = t {
                let mut next = (**t).clone();
                next.trained.report.none_threshold = value;
                *t = Arc::new(next);
            }
        });
    }
}

fn percent(x: f32) -> String {
    format!("{:.0} %", x * 100.0)
}

#[component]
pub fn ThresholdControl(threshold: NoneOfThese) -> impl IntoView {
    let training = threshold.training;
    let predictions = Memo::new(move |_| {
        training.trained.with(|t| {
            t.as_ref()
                .map(|t| t.trained.report.predictions.clone())
                .unwrap_or_default()
        })
    });
    let suggested = Memo::new(move |_| predictions.with(|p| suggest(p)));
    let slider = move |ev| event_target_value(&ev).parse::<f32>().ok().map(|v| v / 100.0);
    let said = move || {
        let value = threshold.value();
        predictions.with(|p| {
            if p.is_empty() {
                "This model came without its validation images: no suggestion, and nothing to measure it on."
                    .to_string()
            } else {
                format!(
                    "Suggested: {} (it keeps {:.0} % of the right answers on the validation images). At {}, {}.",
                    percent(suggested.get()),
                    KEEP * 100.0,
                    percent(value),
                    effect(p, value).describe()
                )
            }
        })
    };
    let is_suggested = move || (threshold.value() - suggested.get()).abs() < 1e-6;
    view! {
        <div class="none-of-these" data-testid="none-of-these">
            <label for="none-threshold">
                "Answer “none of these” below "
                <output for="none-threshold" data-testid="none-threshold-value">{move || percent(threshold.value())}</output>
            </label>
            <input type="range" id="none-threshold" min="0" max="100" step="1" data-testid="none-threshold"
                aria-describedby="none-threshold-hint"
                prop:value=move || (threshold.value() * 100.0).round().to_string()
                on:input=move |ev| threshold.moving.set(slider(ev))
                on:change=move |ev| threshold.commit(slider(ev)) />
            <button type="button" data-testid="none-threshold-reset" disabled=is_suggested
                on:click=move |_| threshold.commit(None)>"Use the suggestion"</button>
            <p class="hint" id="none-threshold-hint" data-testid="none-threshold-hint">{said}</p>
        </div>
    }
}
