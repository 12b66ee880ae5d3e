//! `--device cuda|vulkan|cpu`: which burn backend the command runs on. One binary holds the backends it was built
//! with (Cargo features `cuda`, `vulkan`); the default is the best of them this machine has, said at the start.

use burn::tensor::Device;
use clap::ValueEnum;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Choice {
    /// burn's CUDA backend (NVIDIA GPUs; build with `--features cuda`).
    Cuda,
    /// burn-wgpu over Vulkan (any Vulkan GPU; build with `--features vulkan`).
    Vulkan,
    /// burn's CPU backend (flex) with our own kernels, on every core.
    Cpu,
}

/// The device and how to name it to the user.
pub fn pick(choice: Option<Choice>) -> Result<(Device, String), String> {
    match choice {
        Some(Choice::Cpu) => Ok(cpu()),
        Some(gpu) => {
            gpu_device(gpu)?.ok_or_else(|| format!("--device {}: no such GPU found on this machine", name(gpu)))
        }
        None => {
            for gpu in [Choice::Cuda, Choice::Vulkan] {
                if let Ok(Some(found)) = gpu_device(gpu) {
                    return Ok(found);
                }
            }
            Ok(cpu())
        }
    }
}

fn name(choice: Choice) -> &'static str {
    match choice {
        Choice::Cuda => "cuda",
        Choice::Vulkan => "vulkan",
        Choice::Cpu => "cpu",
    }
}

fn cpu() -> (Device, String) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (Device::flex(), format!("the CPU ({threads} threads)"))
}

/// The first GPU of that kind, `None` where the machine has none, or why it cannot be used.
fn gpu_device(choice: Choice) -> Result<Option<(Device, String)>, String> {
    let not_built = |feature: &str| {
        Err(format!(
            "--device {feature}: this ajuste was built without it; install it with `cargo install --path . --bin ajuste \
             --locked --features {feature}`"
        ))
    };
    match choice {
        Choice::Cpu => Ok(Some(cpu())),
        #[cfg(feature = "cuda")]
        Choice::Cuda => Ok(first(burn::tensor::DeviceType::Cuda, "CUDA")),
        #[cfg(not(feature = "cuda"))]
        Choice::Cuda => not_built("cuda"),
        #[cfg(feature = "vulkan")]
        Choice::Vulkan => Ok(first(burn::tensor::DeviceType::Vulkan, "Vulkan")),
        #[cfg(not(feature = "vulkan"))]
        Choice::Vulkan => not_built("vulkan"),
    }
}

/// Listing devices loads the driver, which panics where it is missing: that is "no such device" here.
#[cfg(any(feature = "cuda", feature = "vulkan"))]
fn first(kind: burn::tensor::DeviceType, api: &str) -> Option<(Device, String)> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = std::panic::catch_unwind(|| {
        let device = Device::enumerate(kind).into_iter().next()?;
        let gpu = device
            .identity()
            .map_or_else(|| "a GPU".to_string(), |id| id.name.to_string());
        Some((device, gpu))
    });
    std::panic::set_hook(quiet);
    found
        .ok()
        .flatten()
        .map(|(device, gpu)| (device, format!("{gpu} ({api})")))
}
