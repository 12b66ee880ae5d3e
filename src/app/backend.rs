//! Picks where the backbone runs: WebGPU on a hardware adapter; the CPU (burn's flex backend, wasm SIMD) when
//! the adapter is a software fallback (SwiftShader in headless Chromium embeds about 15× slower than the CPU
//! path: docs/benchmarks.md) or there is none. `?backend=webgpu|cpu` and the UI override the choice.

use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use super::browser::{js_error, url_param, window};

pub use ajuste::web::device::BackendKind;

/// What the browser offers, probed through `navigator.gpu` (read with Reflect: web-sys's WebGPU API is unstable).
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterProbe {
    pub available: bool,
    pub fallback: bool,
    pub description: String,
}

pub async fn probe_adapter() -> AdapterProbe {
    let none = |why: &str| AdapterProbe {
        available: false,
        fallback: false,
        description: why.to_string(),
    };
    let gpu = match js_sys::Reflect::get(&window().navigator(), &"gpu".into()) {
        Ok(gpu) if !gpu.is_undefined() && !gpu.is_null() => gpu,
        _ => return none("this browser has no WebGPU (navigator.gpu is missing)"),
    };
    let request = match js_sys::Reflect::get(&gpu, &"requestAdapter".into()) {
        Ok(f) if f.is_function() => js_sys::Function::from(f),
        _ => return none("navigator.gpu.requestAdapter is missing"),
    };
    let promise = match request.call0(&gpu) {
        Ok(p) => js_sys::Promise::from(p),
        Err(e) => return none(&js_error(e)),
    };
    let adapter = match JsFuture::from(promise).await {
        Ok(a) if !a.is_null() && !a.is_undefined() => a,
        Ok(_) => return none("requestAdapter() returned no adapter"),
        Err(e) => return none(&js_error(e)),
    };
    let info = js_sys::Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let field = |name: &str| {
        js_sys::Reflect::get(&info, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let fallback = js_sys::Reflect::get(&info, &"isFallbackAdapter".into())
        .ok()
        .and_then(|v| v.as_bool())
        .or_else(|| {
            js_sys::Reflect::get(&adapter, &"isFallbackAdapter".into())
                .ok()
                .and_then(|v| v.as_bool())
        })
        .unwrap_or(false);
    let parts: Vec<String> = [field("vendor"), field("architecture"), field("description")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    AdapterProbe {
        available: true,
        fallback,
        description: parts.join(" / "),
    }
}

/// The automatic choice and the reason shown to the user.
pub fn choose(probe: &AdapterProbe, forced: Option<BackendKind>) -> (BackendKind, String) {
    if let Some(kind) = forced {
        return (kind, format!("chosen by you (?backend={})", kind.param()));
    }
    if !probe.available {
        (BackendKind::Cpu, format!("no WebGPU adapter: {}", probe.description))
    } else if probe.fallback {
        (
            BackendKind::Cpu,
            format!(
                "this browser's WebGPU runs on the processor, not on a graphics card, and is far slower than the \
                 CPU path (adapter: {})",
                probe.description
            ),
        )
    } else {
        (
            BackendKind::WebGpu,
            format!("hardware WebGPU adapter: {}", probe.description),
        )
    }
}

pub fn forced_by_url() -> Option<BackendKind> {
    url_param("backend").and_then(|v| BackendKind::from_param(&v))
}
