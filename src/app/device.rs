//! The backends and their burn devices. Free of page-only APIs: the training worker (`src/worker.rs`)
//! includes this file too, and only it builds devices (the page is built without burn, `ml` off).

#[cfg(feature = "ml")]
use burn::tensor::Device;
#[cfg(feature = "ml")]
use burn::tensor::wgpu::WgpuBackend;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    WebGpu,
    Cpu,
}

/// Creates the burn device. WebGPU must be initialised asynchronously in a browser.
#[cfg(feature = "ml")]
pub async fn init_device(kind: BackendKind) -> Result<Device, String> {
    match kind {
        BackendKind::Cpu => Ok(Device::flex()),
        BackendKind::WebGpu => Device::wgpu_options()
            .graphics_api(WgpuBackend::WebGpu)
            .init_async()
            .await
            .map_err(|e| format!("WebGPU could not start: {e}")),
    }
}
