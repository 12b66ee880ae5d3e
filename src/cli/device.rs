//! `--device cuda|vulkan|cpu` and `--devices`: which burn backend the command runs on, and on how many of its
//! devices. One binary holds the backends it was built with (Cargo features `cuda`, `vulkan`); the default is the
//! best of them this machine has, said at the start. On the CPU every core computes by default: each thread holds
//! its own copy of the network, as each of the page's CPU workers does.

use std::str::FromStr;

use ajuste::finetune::shard::CPU_PARTS;
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

/// `--devices`: `all`, or device numbers separated by commas (`0,1`; a number given twice is a second copy of the
/// network on the same device). On the CPU each is one thread.
#[derive(Clone, Debug, PartialEq)]
pub enum Devices {
    All,
    Listed(Vec<usize>),
}

impl FromStr for Devices {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "all" {
            return Ok(Self::All);
        }
        let listed = s
            .split(',')
            .map(|n| n.trim().parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("'{s}' is neither `all` nor device numbers separated by commas, such as 0,1"))?;
        Ok(Self::Listed(listed))
    }
}

/// The devices the work goes to (the first computes the trainer's own share) and how to name them to the user.
pub struct Picked {
    pub devices: Vec<Device>,
    pub name: String,
    /// Whether they are CPU threads (whose batches are computed in the page's fixed number of parts).
    pub cpu: bool,
}

/// One device of that choice (`predict`, `eval`).
pub fn pick(choice: Option<Choice>) -> Result<(Device, String), String> {
    let picked = pick_many(choice, Some(&Devices::Listed(vec![0])))?;
    Ok((picked.devices[0].clone(), picked.name))
}

/// The devices of that choice: by default the first GPU, or every core of the CPU (at most [`CPU_PARTS`]).
pub fn pick_many(choice: Option<Choice>, devices: Option<&Devices>) -> Result<Picked, String> {
    let choice = match choice {
        Some(choice) => choice,
        None => [Choice::Cuda, Choice::Vulkan]
            .into_iter()
            .find(|&gpu| matches!(gpus(gpu), Ok(found) if !found.is_empty()))
            .unwrap_or(Choice::Cpu),
    };
    if choice == Choice::Cpu {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match devices {
            None | Some(Devices::All) => cores.min(CPU_PARTS),
            Some(Devices::Listed(listed)) => listed.len(),
        };
        if threads > CPU_PARTS {
            return Err(format!(
                "--devices: at most {CPU_PARTS} CPU threads (each batch is cut into {CPU_PARTS} parts)"
            ));
        }
        let plural = if threads == 1 { "" } else { "s" };
        return Ok(Picked {
            devices: vec![Device::flex(); threads],
            name: format!("the CPU ({threads} thread{plural} of {cores})"),
            cpu: true,
        });
    }
    let found = gpus(choice)?;
    let api = name(choice);
    if found.is_empty() {
        return Err(format!("--device {api}: no such GPU found on this machine"));
    }
    let numbers = match devices {
        None => vec![0],
        Some(Devices::All) => (0..found.len()).collect(),
        Some(Devices::Listed(listed)) => listed.clone(),
    };
    if let Some(missing) = numbers.iter().find(|&&n| n >= found.len()) {
        return Err(format!(
            "--devices: there is no {api} GPU {missing}; this machine has {} (numbered from 0)",
            found.len()
        ));
    }
    let gpu = &found[numbers[0]].1;
    let listed: Vec<String> = numbers.iter().map(usize::to_string).collect();
    Ok(Picked {
        devices: numbers.iter().map(|&n| found[n].0.clone()).collect(),
        name: match numbers.len() {
            1 => format!("{gpu} ({api})"),
            n => format!("{n} GPUs ({api} {}; {gpu})", listed.join(", ")),
        },
        cpu: false,
    })
}

fn name(choice: Choice) -> &'static str {
    match choice {
        Choice::Cuda => "cuda",
        Choice::Vulkan => "vulkan",
        Choice::Cpu => "cpu",
    }
}

/// The GPUs of that kind with their names (none where the machine has none), or why they cannot be used.
fn gpus(choice: Choice) -> Result<Vec<(Device, String)>, String> {
    let not_built = |feature: &str| {
        Err(format!(
            "--device {feature}: this ajuste was built without it; install it with `cargo install --path . --bin ajuste \
             --locked --features {feature}`"
        ))
    };
    match choice {
        Choice::Cpu => Ok(Vec::new()),
        #[cfg(feature = "cuda")]
        Choice::Cuda => Ok(listed(burn::tensor::DeviceType::Cuda)),
        #[cfg(not(feature = "cuda"))]
        Choice::Cuda => not_built("cuda"),
        #[cfg(feature = "vulkan")]
        Choice::Vulkan => Ok(listed(burn::tensor::DeviceType::Vulkan)),
        #[cfg(not(feature = "vulkan"))]
        Choice::Vulkan => not_built("vulkan"),
    }
}

/// Listing devices loads the driver, which panics where it is missing: that is "no such device" here.
#[cfg(any(feature = "cuda", feature = "vulkan"))]
fn listed(kind: burn::tensor::DeviceType) -> Vec<(Device, String)> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = std::panic::catch_unwind(|| {
        Device::enumerate(kind)
            .into_iter()
            .map(|device| {
                let gpu = device
                    .identity()
                    .map_or_else(|| "a GPU".to_string(), |id| id.name.to_string());
                (device, gpu)
            })
            .collect::<Vec<_>>()
    });
    std::panic::set_hook(quiet);
    found.unwrap_or_default()
}
