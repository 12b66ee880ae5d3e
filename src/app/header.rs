//! Title, model status (download progress, cache) and the backend in use, with why, and a switch.

use leptos::prelude::*;

use super::Progress;
use super::backend::BackendKind;
use super::session;
use super::state::{ModelStatus, Ui};

#[component]
pub fn Header() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let model_line = move || match ui.model.get() {
        ModelStatus::Starting => "Starting…".to_string(),
        ModelStatus::Downloading { loaded, total } => match total {
            Some(t) => format!(
                "Downloading the model: {:.1} / {:.1} MB",
                loaded as f64 / 1e6,
                t as f64 / 1e6
            ),
            None => format!("Downloading the model: {:.1} MB", loaded as f64 / 1e6),
        },
        ModelStatus::Building => "Preparing the model…".to_string(),
        ModelStatus::Ready {
            from_cache,
            megabytes,
            load_ms,
        } => format!(
            "EfficientNet-Lite0 ready ({megabytes:.1} MB {}, {:.1} s). Pretrained on ImageNet; its 1000-class head is replaced by one for your classes.",
            if from_cache {
                "from the browser cache"
            } else {
                "downloaded, now cached"
            },
            load_ms / 1000.0
        ),
        ModelStatus::Failed(e) => format!("The model could not be loaded: {e}"),
    };
    let download_fraction = move || match ui.model.get() {
        ModelStatus::Downloading { loaded, total: Some(t) } if t > 0 => Some(loaded as f64 / t as f64),
        _ => None,
    };
    let downloading = move || matches!(ui.model.get(), ModelStatus::Downloading { .. } | ModelStatus::Starting);
    let failed = move || matches!(ui.model.get(), ModelStatus::Failed(_));
    let on_backend = move |ev: leptos::ev::Event| {
        let kind = BackendKind::from_param(&event_target_value(&ev)).unwrap_or(BackendKind::Cpu);
        leptos::task::spawn_local(session::switch_backend(ui, kind));
    };
    let backend_kind = move || ui.backend.get().map(|b| b.kind.param()).unwrap_or("cpu");
    view! {
        <header class="top">
            <h1>"Ajuste"<span class="tagline">" fine-tune an image classifier in your browser"</span></h1>
            <p class="model-status" class:error=failed role="status" data-testid="model-status">{model_line}</p>
            <Show when=downloading>
                <Progress label=Signal::derive(move || "Model download".to_string()) value=Signal::derive(download_fraction) />
            </Show>
            <div class="backend" data-testid="backend" data-backend=backend_kind>
                <label for="backend-select">"Runs on "</label>
                <select id="backend-select" on:change=on_backend prop:value=backend_kind
                    disabled=move || ui.phase.get().busy() || ui.backend.get().is_none()>
                    <option value="webgpu" disabled=move || !ui.backend.get().is_some_and(|b| b.webgpu_available)>
                        {BackendKind::WebGpu.label()}
                    </option>
                    <option value="cpu">{BackendKind::Cpu.label()}</option>
                </select>
                <span class="why">{move || ui.backend.get().map(|b| format!(" — {}", b.reason))}</span>
            </div>
        </header>
    }
}
