//! Step 2: options, Train / Stop, progress, and the live loss and accuracy charts.

use ajuste::train::{Progress as RunProgress, Stage};
use leptos::prelude::*;

use super::Progress;
use super::charts::{LineChart, Series};
use super::dataset_flow::DatasetFlow;
use super::model_flow::ModelFlow;
use super::options_form::OptionsForm;
use super::runner::Job;
use super::training_flow::TrainingFlow;

fn time_left(p: &RunProgress) -> String {
    p.seconds_left
        .map_or(String::new(), |s| format!(", about {s:.0} s left"))
}

#[component]
pub fn TrainPanel() -> impl IntoView {
    let model = expect_context::<ModelFlow>();
    let dataset = expect_context::<DatasetFlow>();
    let training = expect_context::<TrainingFlow>();
    let train = Action::new_local(move |job: &Job| training.run(job.clone()));
    let trainable = Memo::new(move |_| dataset.dataset.with(|d| d.check_trainable()));
    let ready = move || model.ready();
    let can_train = move || ready() && !training.is_running() && trainable.with(Result::is_ok);
    let last = move || training.live.with(|h| h.last().cloned());
    let state = move || match training.running.get() {
        Some(RunProgress {
            stage: Stage::Embedding,
            ..
        }) => "embedding",
        Some(RunProgress {
            stage: Stage::Training, ..
        }) => "training",
        None if training.error.with(Option::is_some) => "error",
        None if training.trained.with(Option::is_some) => "done",
        None => "idle",
    };
    let status_text = move || {
        if let Some(p) = training.running.get() {
            return match p.stage {
                Stage::Embedding => format!(
                    "Computing features with the frozen backbone: {} / {} images ({:.1} images/s{})",
                    p.done,
                    p.total,
                    p.per_second,
                    time_left(&p)
                ),
                Stage::Training => format!("Training the new head: epoch {} / {}{}", p.done, p.total, time_left(&p)),
            };
        }
        if let Some(e) = training.error.get() {
            return e.to_string();
        }
        if let Some(t) = training.trained.get() {
            let r = &t.trained.report;
            let done = format!(
                "Done: {}. Kept the head of epoch {} (lowest validation loss {:.3}, accuracy {:.1}%).",
                r.stop_reason,
                r.best.epoch + 1,
                r.val_loss,
                r.val_accuracy * 100.0
            );
            return if training.stale.get() {
                format!("{done} The images have changed since: retrain needed.")
            } else {
                done
            };
        }
        match trainable.get() {
            Err(problems) => problems.join(" "),
            Ok(()) if !ready() => "Waiting for the model…".to_string(),
            Ok(()) => "Ready to train.".to_string(),
        }
    };
    let progress = move || {
        training.running.get().filter(|p| p.total > 0).map(|p| {
            let label = match p.stage {
                Stage::Embedding => "Features",
                Stage::Training => "Training",
            };
            (label.to_string(), p.done as f64 / p.total as f64)
        })
    };
    let history = Memo::new(move |_| training.history());
    let series = move |train_name, val_name, pick: fn(&ajuste::train::EpochMetrics) -> (f32, f32)| {
        Signal::derive(move || {
            history.with(|h| {
                vec![
                    Series {
                        name: train_name,
                        class: "train",
                        values: h.iter().map(|m| pick(m).0).collect(),
                    },
                    Series {
                        name: val_name,
                        class: "val",
                        values: h.iter().map(|m| pick(m).1).collect(),
                    },
                ]
            })
        })
    };
    let loss_series = series("training loss", "validation loss", |m| (m.train_loss, m.val_loss));
    let acc_series = series("training accuracy", "validation accuracy", |m| {
        (m.train_accuracy, m.val_accuracy)
    });
    let best_epoch = Signal::derive(move || {
        history.with(|h| {
            h.iter()
                .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
                .map(|m| m.epoch)
        })
    });
    let shown = move || {
        if training.is_running() {
            last()
        } else {
            training
                .trained
                .with(|t| t.as_ref().map(|t| t.trained.report.best.clone()))
        }
    };
    view! {
        <section class="panel" aria-labelledby="train-title">
            <h2 id="train-title">"2. Train"</h2>
            <OptionsForm />
            <div class="actions">
                <button type="button" class="primary" data-testid="train-button" disabled=move || !can_train()
                    on:click=move |_| {
                        if let Some(job) = training.begin(&dataset, &model) {
                            train.dispatch_local(job);
                        }
                    }>
                    "Train"
                </button>
                <button type="button" data-testid="stop-button" disabled=move || !training.is_running()
                    on:click=move |_| training.request_stop()>
                    "Stop"
                </button>
            </div>
            <p class="status" class:error=move || state() == "error" role="status" aria-live="polite"
                data-testid="training-status"
                data-state=state
                data-stale=move || training.stale.get().to_string()
                data-epoch=move || history.with(|h| h.len().to_string())
                data-val-loss=move || shown().map(|m| m.val_loss.to_string()).unwrap_or_default()
                data-val-accuracy=move || shown().map(|m| m.val_accuracy.to_string()).unwrap_or_default()>
                {status_text}
            </p>
            <p class="notice" role="status" data-testid="training-notice">{move || training.notice.get()}</p>
            {move || progress().map(|(label, value)| view! { <Progress label=label value=Some(value) /> })}
            <div class="charts" data-testid="charts">
                <LineChart title="Loss" y_label="cross-entropy" series=loss_series y_range=None marker=best_epoch />
                <LineChart title="Accuracy" y_label="accuracy" series=acc_series y_range=Some((0.0, 1.0)) marker=best_epoch />
            </div>
        </section>
    }
}
