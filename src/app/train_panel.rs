//! Step 2: options, Train / Stop, progress, and the live loss and accuracy charts.

use ajuste::options::FinetuneChoice;
use ajuste::train::budget::duration;
use ajuste::train::honest::accuracy_summary;
use ajuste::train::{Progress as RunProgress, RunMode, Stage};
use leptos::prelude::*;

use super::Progress;
use super::dataset_flow::DatasetFlow;
use super::finetune_form::FinetuneForm;
use super::model_flow::ModelFlow;
use super::options_form::OptionsForm;
use super::run_charts::RunCharts;
use super::runner::Job;
use super::training_flow::TrainingFlow;

/// The head run's time left: estimated once a few steps past the first have been timed. Its epochs may end
/// early, so their estimate is a bound.
fn time_left(p: &RunProgress) -> String {
    let bound = if p.stage == Stage::Training { "at most " } else { "" };
    match p.seconds_left {
        // The stage's last step: nothing of it is left to estimate.
        _ if p.done >= p.total => String::new(),
        Some(s) => format!(", {bound}about {} left", duration(s)),
        None => ", estimating the time left…".to_string(),
    }
}

/// A deeper run's time left: estimated only once a few steps have been timed, and within its budget.
fn deep_left(p: &RunProgress) -> String {
    let budget = match p.budget_seconds {
        0 => String::new(),
        b => format!("; time budget {}", duration(b as f64)),
    };
    match p.seconds_left {
        None => format!(", estimating the time left…{budget}"),
        Some(s) => format!(", about {} left{budget}", duration(s)),
    }
}

/// How a deeper run ended, for the page and its tests: budget, early, stopped or done.
fn end_kind(budget_reached: bool, stop_reason: &str) -> &'static str {
    if budget_reached {
        "budget"
    } else if stop_reason.contains("early") {
        "early"
    } else if stop_reason.contains("by you") {
        "stopped"
    } else {
        "done"
    }
}

/// The status line of a deeper run's step: epoch, step, speed, time left.
fn deep_status(p: &RunProgress) -> String {
    let what = match p.run {
        RunMode::Lora => "Training LoRA adapters on the last blocks",
        _ => "Retraining the last blocks",
    };
    match p.stage {
        Stage::Caching => format!(
            "{what}: running the frozen part once per image, batch {} / {} ({:.1} images/s)",
            p.done, p.total, p.images_per_second
        ),
        Stage::Evaluating => format!("Evaluating the kept model: {} / {} validation images", p.done, p.total),
        _ => format!(
            "{what}: {} {} / {}, step {} / {} ({:.1} images/s{})",
            if p.rounds { "round" } else { "epoch" },
            p.epoch,
            p.epochs,
            p.done,
            p.total,
            p.images_per_second,
            deep_left(p)
        ),
    }
}

#[component]
pub fn TrainPanel() -> impl IntoView {
    let model = expect_context::<ModelFlow>();
    let dataset = expect_context::<DatasetFlow>();
    let training = expect_context::<TrainingFlow>();
    let train = Action::new_local(move |job: &Job| training.run(job.clone()));
    let trainable = Memo::new(move |_| dataset.dataset.with(|d| d.check_trainable()));
    let ready = move || model.ready();
    // A drop still being read: training now would take only the images read so far.
    let reading = move || dataset.loading.get();
    let blocker = Memo::new(move |_| training.options_blocker(false));
    let can_train = move || {
        ready()
            && !training.is_running()
            && reading().is_none()
            && blocker.with(Option::is_none)
            && trainable.with(Result::is_ok)
    };
    // Continuing an opened model trains its head alone: the deeper run's options do not hold it back.
    let can_continue = move || {
        ready()
            && !training.is_running()
            && reading().is_none()
            && training.options_blocker(true).is_none()
            && trainable.with(Result::is_ok)
    };
    let wait = move || match reading() {
        Some((done, total)) => Some(format!("Train waits until every image is read: {done} / {total}.")),
        None => blocker.get().map(|why| format!("Train waits for the options: {why}")),
    };
    // An interrupted run is offered only while the images are the ones it trained on, and said to be lost when
    // they are not.
    let resumable = move || training.resumable_here(&dataset);
    let last = move || training.live.with(|h| h.last().map(|(_, m)| m.clone()));
    let state = move || match training.running.get() {
        Some(RunProgress {
            stage: Stage::Embedding,
            ..
        }) => "embedding",
        Some(_) => "training",
        None if training.error.with(Option::is_some) => "error",
        None if training.trained.with(Option::is_some) => "done",
        None => "idle",
    };
    let status_text = move || {
        if let Some(p) = training.running.get() {
            return match p.stage {
                // Claimed, before the job has counted its images.
                Stage::Embedding if p.total == 0 => "Starting…".to_string(),
                Stage::Embedding if p.done == 0 => {
                    format!("Computing features with the frozen backbone: 0 / {} images", p.total)
                }
                Stage::Embedding => format!(
                    "Computing features with the frozen backbone: {} / {} images ({:.1} images/s{})",
                    p.done,
                    p.total,
                    p.per_second,
                    time_left(&p)
                ),
                Stage::Training => format!("Training the new head: epoch {} / {}{}", p.done, p.total, time_left(&p)),
                Stage::Caching | Stage::FineTuning | Stage::Evaluating => deep_status(&p),
            };
        }
        if let Some(e) = training.error.get() {
            return e.to_string();
        }
        if let Some(t) = training.trained.get() {
            let r = &t.trained.report;
            if let Some(file) = &t.opened {
                return format!("Kept the model opened from {file} (not trained here). Train to replace it.");
            }
            let done = format!(
                "Done: {}. Kept {} from its {} (loss {:.3}; {}).",
                r.stop_reason,
                match r.mode {
                    RunMode::Head => "the head",
                    RunMode::Lora => "the LoRA-adapted model",
                    RunMode::LastBlocks => "the retrained model",
                },
                r.kept_epoch(),
                r.val_loss,
                accuracy_summary(r.val_accuracy, r.num_train, r.num_val)
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
                Stage::Caching => "Preparing",
                Stage::FineTuning => "Fine-tuning",
                Stage::Evaluating => "Evaluating",
            };
            (label.to_string(), p.done as f64 / p.total as f64)
        })
    };
    // The file of a kept model opened rather than trained here: it can be trained further.
    let opened = move || training.trained.with(|t| t.as_ref().and_then(|t| t.opened.clone()));
    let history = Memo::new(move |_| training.history());
    let runs = Memo::new(move |_| training.runs());
    // Whether the charted runs had validation images: the kept report says, or, while one runs, its options.
    let held_out = Memo::new(move |_| match training.trained.get() {
        Some(t) if !training.is_running() => t.trained.report.num_val > 0,
        _ => training.options.with(|o| o.val_fraction > 0.0),
    });
    let kept = move || training.kept_mode().filter(|_| !training.is_running());
    let explanation = move || {
        training
            .trained
            .with(|t| t.as_ref().and_then(|t| t.trained.report.explanation.clone()))
            .filter(|_| !training.is_running())
    };
    let shown = move || {
        if training.is_running() {
            last()
        } else {
            training
                .trained
                .with(|t| t.as_ref().map(|t| t.trained.report.best.clone()))
        }
    };
    // A focused button disabled or hidden by the run's start or end would drop the keyboard focus to the page: it
    // moves to Stop while a run goes, and back to Train after. Judged by the button focused when the run starts
    // or ends (this runs before or after the button is disabled, and engines differ on where the focus goes).
    let (train_button, stop_button) = (
        NodeRef::<leptos::html::Button>::new(),
        NodeRef::<leptos::html::Button>::new(),
    );
    Effect::new(move |was: Option<bool>| {
        let running = training.is_running();
        let (lost, target): (&[&str], _) = if running {
            (&["train-button", "continue-training", "resume-training"], stop_button)
        } else {
            (&["stop-button"], train_button)
        };
        let document = web_sys::window().and_then(|w| w.document());
        let focus_lost = document.is_some_and(|d| {
            d.active_element().is_none_or(|a| {
                d.body().is_some_and(|b| *b == a)
                    || a.get_attribute("data-testid")
                        .is_some_and(|id| lost.contains(&id.as_str()))
            })
        });
        if was.is_some_and(|w| w != running)
            && focus_lost
            && let Some(button) = target.get_untracked()
        {
            // After the render: the button may be disabled in this same update.
            // Without scrolling: a user reading the charts below stays where they are.
            leptos::task::spawn_local(async move {
                gloo::timers::future::TimeoutFuture::new(0).await;
                let options = web_sys::FocusOptions::new();
                options.set_prevent_scroll(true);
                let _ = button.focus_with_options(&options);
            });
        }
        running
    });
    view! {
        <section class="panel" aria-labelledby="train-title">
            <h2 id="train-title">"2. Train"</h2>
            <FinetuneForm />
            <OptionsForm />
            <div class="actions">
                <button type="button" class="primary" data-testid="train-button" node_ref=train_button disabled=move || !can_train()
                    aria-describedby="train-wait"
                    on:click=move |_| {
                        if let Some(job) = training.begin(&dataset, &model) {
                            train.dispatch_local(job);
                        }
                    }>
                    "Train"
                </button>
                <Show when=move || opened().is_some() && !training.is_running()>
                    <button type="button" data-testid="continue-training" disabled=move || !can_continue()
                        title="Train the opened model's head further on these images (its classes must match)"
                        on:click=move |_| {
                            if let Some(job) = training.begin_continue(&dataset, &model) {
                                train.dispatch_local(job);
                            }
                        }>
                        {move || format!("Continue training {}", opened().unwrap_or_default())}
                    </button>
                </Show>
                <button type="button" data-testid="stop-button" node_ref=stop_button disabled=move || !training.is_running()
                    on:click=move |_| training.request_stop()>
                    "Stop"
                </button>
            </div>
            <p class="hint" id="train-wait" data-testid="train-wait" role="status" hidden=move || wait().is_none()>
                {wait}
            </p>
            <Show when=move || resumable() == Some(false) && !training.is_running()>
                <p class="notice" data-testid="resume-refused">
                    "A training interrupted at your last visit cannot be resumed: the images changed since (added, \
                     removed or renamed). Train again, or put the images back as they were to resume it."
                </p>
            </Show>
            <Show when=move || resumable() == Some(true) && !training.is_running()>
                <p class="notice" data-testid="resume-notice">
                    {move || training.resumable.with(|r| r.as_ref().map(|r| {
                        // Auto's head run finished before its LoRA run was interrupted: it is kept, not redone.
                        let auto = if r.options.finetune == FinetuneChoice::Auto {
                            "Auto's finished head-only run is kept; "
                        } else {
                            ""
                        };
                        format!(
                            "{} training was interrupted after epoch {} of {}. {auto}Resume goes on from there.",
                            r.mode.label(), r.epochs_done, r.options.epochs
                        )
                    }))}
                    <button type="button" class="primary" data-testid="resume-training" disabled=move || !ready() || reading().is_some()
                        on:click=move |_| {
                            if let Some(job) = training.begin_resume(&dataset, &model) {
                                train.dispatch_local(job);
                            }
                        }>
                        "Resume"
                    </button>
                </p>
            </Show>
            <p class="status" class:error=move || state() == "error" role="status" aria-live="polite"
                data-testid="training-status"
                data-state=state
                data-stale=move || training.stale.get().to_string()
                data-mode=move || training.kept_mode().map(|m| m.name()).unwrap_or_default()
                data-epoch=move || history.with(|h| h.len().to_string())
                data-val-loss=move || shown().map(|m| m.val_loss.to_string()).unwrap_or_default()
                data-val-accuracy=move || shown().map(|m| m.val_accuracy.to_string()).unwrap_or_default()>
                {status_text}
            </p>
            <p class="notice" role="status" data-testid="training-notice">{move || training.notice.get()}</p>
            {move || progress().map(|(label, value)| view! { <Progress label=label value=Some(value) /> })}
            <p class="explanation" data-testid="auto-explanation">{explanation}</p>
            {move || {
                let done = !training.is_running();
                runs.get()
                    .into_iter()
                    .filter(|_| done)
                    .filter_map(|run| run.deep.clone().map(|d| (run, d)))
                    .map(|(run, d)| view! {
                        <p class="deep-summary" data-testid="deep-summary" data-steps=d.steps
                            data-seconds=format!("{:.1}", d.seconds) data-best-step=d.best_step
                            data-budget-seconds=d.budget_seconds data-reason=end_kind(d.budget_reached, &run.stop_reason)>
                            {format!("{}: {}.", run.mode.label(), d.sentence())}
                        </p>
                    })
                    .collect_view()
            }}
            <div data-testid="charts">
                {move || {
                    let several = runs.with(|r| r.len() > 1);
                    runs.get()
                        .into_iter()
                        .map(|run| {
                            let is_kept = several && kept() == Some(run.mode);
                            view! { <RunCharts run=run kept=is_kept held_out=held_out.get() /> }
                        })
                        .collect_view()
                }}
            </div>
        </section>
    }
}
