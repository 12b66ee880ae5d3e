//! The loss and accuracy charts of one run, labelled with its mode: Auto's two runs get one pair each.

use ajuste::chart::run_series;
use ajuste::train::RunHistory;
use leptos::prelude::*;

use super::charts::LineChart;

/// `held_out`: whether the run had validation images. Without them the "validation" figures would be the
/// training ones again, so only the training series are drawn, and the charts say why.
#[component]
pub fn RunCharts(run: RunHistory, kept: bool, held_out: bool) -> impl IntoView {
    let best = run.best().map(|m| m.epoch);
    let (loss, accuracy) = run_series(&run, held_out);
    let title = format!("{}{}", run.mode.label(), if kept { " (kept)" } else { "" });
    view! {
        <div class="run-charts" data-testid="run-charts" data-run=run.mode.name() data-epochs=run.history.len()
            data-held-out=held_out.to_string()>
            <h3>{title}</h3>
            {(!held_out).then(|| view! {
                <p class="notice warn" data-testid="no-validation">
                    "No validation images (none was held out): these are training figures only, and say \
                     nothing about how the model does on new images."
                </p>
            })}
            <div class="charts">
                <LineChart title="Loss" y_label="cross-entropy" series=Signal::derive(move || loss.clone())
                    y_range=None marker=Signal::derive(move || best) />
                <LineChart title="Accuracy" y_label="accuracy" series=Signal::derive(move || accuracy.clone())
                    y_range=Some((0.0, 1.0)) marker=Signal::derive(move || best) />
            </div>
        </div>
    }
}
