//! The backends the model can run on. Shared by the page (built without burn: it only names them) and the
//! training worker (`src/worker.rs`, which builds the burn device for one).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    WebGpu,
    Cpu,
}

/// How the page names and shows a backend, and reads it from `?backend=`.
impl BackendKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::WebGpu => "WebGPU",
            Self::Cpu => "CPU (WebAssembly SIMD)",
        }
    }
    pub fn param(self) -> &'static str {
        match self {
            Self::WebGpu => "webgpu",
            Self::Cpu => "cpu",
        }
    }
    pub fn from_param(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "webgpu" | "gpu" => Some(Self::WebGpu),
            "cpu" | "wasm" => Some(Self::Cpu),
            _ => None,
        }
    }
}
