//! Title, model status (download progress, cache) and the backend in use, with why, and a switch.

use leptos::prelude::*;

use super::backend::BackendKind;
use super::model_flow::{ModelFlow, ModelStatus};
use super::training_flow::TrainingFlow;
use super::{ErrorLine, Progress};

#[component]
pub fn Header() -> impl IntoView {
    let model = expect_context::<ModelFlow>();
    let training = expect_context::<TrainingFlow>();
    let model_line = move || match model.status.get() {
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
        ModelStatus::Failed => "The model could not be loaded.".to_string(),
    };
    let download_fraction = move || match model.status.get() {
        ModelStatus::Downloading { loaded, total: Some(t) } if t > 0 => Some(loaded as f64 / t as f64),
        _ => None,
    };
    let downloading = move || {
        matches!(
            model.status.get(),
            ModelStatus::Downloading { .. } | ModelStatus::Starting
        )
    };
    let failed = move || matches!(model.status.get(), ModelStatus::Failed);
    let on_backend = move |ev: leptos::ev::Event| {
        let kind = BackendKind::from_param(&event_target_value(&ev)).unwrap_or(BackendKind::Cpu);
        model.switch_to(kind);
    };
    let backend_kind = move || model.kind().map(|k| k.param()).unwrap_or("cpu");
    let reason = move || model.backend.get().map(|b| format!(" — {}", b.reason));
    let webgpu_available = move || model.backend.get().is_some_and(|b| b.webgpu_available);
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
                    disabled=move || training.is_running() || model.kind().is_none()>
                    <option value="webgpu" disabled=move || !webgpu_available()>{BackendKind::WebGpu.label()}</option>
                    <option value="cpu">{BackendKind::Cpu.label()}</option>
                </select>
                <span class="why">{reason}</span>
            </div>
            {move || model.backend.get().and_then(|b| b.threads_note).map(|note| view! {
                <p class="notice" role="status" data-testid="threads-note">{note}</p>
            })}
            <ErrorLine error=model.error test_id="model-error" />
        </header>
    }
}
