//! `ajuste`, natively: the page's training on the same core, from a terminal (issue 27). `ajuste train DATA`
//! trains on a folder of class folders, a `.zip` of them or a `.ajuste` project and writes what the page's
//! *Download everything* gives plus a `.ajuste` the page opens; `ajuste predict MODEL IMAGE…` classifies images.
//! `ajuste eval MODEL DATA` measures a model on labelled images. `--device` picks burn's backend.

mod data;
mod device;
mod disk;
mod eval;
mod features;
mod host;
mod recipe;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ajuste::chart::report_svgs;
use ajuste::export::{self, bundle_files};
use ajuste::finetune::shard::{CPU_PARTS, DeviceHelpers};
use ajuste::model::load_efficientnet;
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::predict::{Predictor, exported_model};
use ajuste::preprocess::prepare_rgb;
use ajuste::project::{EXTENSION, Project, ProjectModel};
use ajuste::train::job::{Job, resume_job, run_job};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The shipped EfficientNet-Lite0 weights (the page downloads the same file).
const WEIGHTS: &[u8] = include_bytes!("../../public/models/efficientnet_lite0.safetensors");
/// Images per batch while computing features (the page's CPU path uses 8 per thread).
const BATCH: usize = 32;

#[derive(Parser)]
#[command(
    name = "ajuste",
    version,
    about = "Fine-tune EfficientNet-Lite0 on your images, as the Ajuste page does"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train on a folder of class folders, a .zip of them, or a .ajuste project saved by the page.
    Train(TrainArgs),
    /// The most likely classes of images, by a model.safetensors from the page or `ajuste train`.
    Predict(PredictArgs),
    /// A model's accuracy, confusion matrix, per-class figures and mistakes on labelled images.
    Eval(eval::EvalArgs),
    /// A PyTorch recipe of a .ajuste project's training, for torchrun on a cluster (script, weights, options, images).
    ExportRecipe(recipe::RecipeArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Head,
    Lora,
    LastBlocks,
}

#[derive(Args)]
struct TrainArgs {
    /// A folder of class folders, a .zip of them, or a .ajuste project.
    data: PathBuf,
    /// What trains (default: the project's, else Auto, as in the page).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Training options as JSON, as a project holds them; fields left out keep the page's defaults.
    #[arg(long)]
    options: Option<PathBuf>,
    /// Epochs of each run.
    #[arg(long)]
    epochs: Option<usize>,
    /// Where the model files go (created).
    #[arg(long, default_value = "ajuste-model")]
    out: PathBuf,
    /// Continue the LoRA, last-blocks or Auto training that was stopped (Ctrl-C) or killed, from the checkpoint
    /// it left in --out, with the options it was started with.
    #[arg(long, conflicts_with_all = ["mode", "options", "epochs"])]
    resume: bool,
    /// What computes: a GPU through CUDA or Vulkan, or the CPU (default: the best this machine has).
    #[arg(long, value_enum)]
    device: Option<device::Choice>,
    /// Which of that kind's devices share every batch: `all`, or numbers such as `0,1` (default: the first GPU,
    /// or every core of the CPU, one thread each).
    #[arg(long)]
    devices: Option<device::Devices>,
    /// Disk space (GB) a LoRA or last-blocks run may take in --out to keep the frozen layers' activations of every
    /// image view, computed once before training and memory-mapped: faster steps, worth it for runs of many more
    /// epochs than the augmentation has views (default 0: in memory within the options' cache_bytes, as the page
    /// does). Only what the images need is taken; the file is gone when the run ends.
    #[arg(long, default_value_t = 0.0, value_name = "GB")]
    disk_cache: f64,
}

#[derive(Args)]
struct PredictArgs {
    /// A model.safetensors.
    model: PathBuf,
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Classes listed per image.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// One JSON array on stdout instead of lines of text.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum)]
    device: Option<device::Choice>,
}

pub fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Train(args) => train(args),
        Command::Predict(args) => predict(args),
        Command::Eval(args) => evaluate(args),
        Command::ExportRecipe(args) => recipe::export_recipe(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("ajuste: {why}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: cannot be read ({e})", path.display()))
}

/// The options: the project's or the defaults, then `--options`, then the flags; checked as the page checks them.
fn options(args: &TrainArgs, base: Option<TrainOptions>) -> Result<TrainOptions, String> {
    let mut options = match &args.options {
        Some(path) => {
            let mut json = serde_json::to_value(base.unwrap_or_default()).map_err(|e| e.to_string())?;
            let given: serde_json::Value = serde_json::from_slice(&read(path)?)
                .map_err(|e| format!("{}: not valid JSON ({e})", path.display()))?;
            let (Some(fields), Some(given)) = (json.as_object_mut(), given.as_object()) else {
                return Err(format!("{}: the options must be a JSON object", path.display()));
            };
            fields.extend(given.clone());
            serde_json::from_value(json).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => base.unwrap_or_default(),
    };
    if let Some(mode) = args.mode {
        let name = mode
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        options.finetune = FinetuneChoice::named(&name, FinetuneChoice::BLOCKS, FinetuneChoice::RANK)
            .ok_or_else(|| format!("unknown mode {name}"))?;
    }
    if let Some(epochs) = args.epochs {
        options.epochs = epochs;
    }
    options.validate().map_err(|why| format!("options: {why}"))?;
    Ok(options)
}

/// A deeper run's checkpoint and the options it was started with, in the output folder.
const CHECKPOINT: &str = "checkpoint.bin";
const CHECKPOINT_OPTIONS: &str = "checkpoint-options.json";
/// A deeper run's memory-mapped cut activations (`--disk-cache`); unlinked as soon as it is mapped.
const ACTIVATIONS_FILE: &str = "activations.bin";

fn train(args: TrainArgs) -> Result<(), String> {
    let (dataset, project_options, images) = data::load(&args.data)?;
    let checkpoint = args.out.join(CHECKPOINT);
    let options_path = args.out.join(CHECKPOINT_OPTIONS);
    let (options, resume) = if args.resume {
        let missing = |path: &Path, e| {
            format!(
                "{}: nothing to resume ({e}); a LoRA, last-blocks or Auto training leaves its checkpoint there after \
                 each epoch",
                path.display()
            )
        };
        let saved = std::fs::read(&options_path).map_err(|e| missing(&options_path, e))?;
        let options: TrainOptions =
            serde_json::from_slice(&saved).map_err(|e| format!("{}: {e}", options_path.display()))?;
        (
            options,
            Some(std::fs::read(&checkpoint).map_err(|e| missing(&checkpoint, e))?),
        )
    } else {
        (options(&args, project_options)?, None)
    };
    dataset.check_trainable().map_err(|problems| problems.join(" "))?;
    let picked = device::pick_many(args.device, args.devices.as_ref())?;
    let (device, device_name) = (picked.devices[0].clone(), &picked.name);
    eprintln!(
        "{} {} images in {} classes on {device_name}, mode {}",
        if resume.is_some() { "Resuming" } else { "Training" },
        dataset.num_images(),
        dataset.classes.len(),
        options.finetune.name()
    );
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: cannot be made ({e})", args.out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: cannot be written ({e})", path.display()))
    };
    let deep = options.deep_mode().is_some();
    if deep {
        write(
            CHECKPOINT_OPTIONS,
            &serde_json::to_vec_pretty(&options).map_err(|e| e.to_string())?,
        )?;
    }

    let model = load_efficientnet(WEIGHTS, &device).map_err(|e| e.to_string())?;
    let helpers = DeviceHelpers::start(WEIGHTS.into(), &picked.devices[1..])?;
    // On the CPU a batch is always cut into the page's parts, so the model does not depend on the cores; on GPUs
    // one part per device.
    let parts = if picked.cpu { CPU_PARTS } else { picked.devices.len() };
    let features = args.out.join(features::FEATURES_FILE);
    let (mut cache, kept) = features::open(&features)?;
    if kept > 0 {
        eprintln!("Features of {kept} images from an earlier run: {}", features.display());
    }
    let mut host = host::CliHost::new()
        .stop_on_ctrl_c()?
        .with_images(images.clone())
        .with_helpers(helpers, parts);
    if deep {
        let bytes = (args.disk_cache.max(0.0) * 1e9) as usize;
        host = host
            .checkpoints_to(&checkpoint)
            .activations_in(&args.out.join(ACTIVATIONS_FILE), bytes);
    }
    let job = Job {
        model: &model,
        device: &device,
        dataset: &dataset,
        options: options.clone(),
        // Features of 8 images per CPU thread, as in the page; 32 per GPU.
        batch_size: if picked.cpu {
            8 * picked.devices.len()
        } else {
            BATCH * picked.devices.len()
        }
        .max(BATCH),
    };
    match &resume {
        Some(bytes) => pollster::block_on(resume_job(job, bytes, &host)),
        None => pollster::block_on(run_job(job, &mut cache, &host)),
    }
    let stopped = host.stopped();
    for line in host.timings() {
        eprintln!("{line}");
    }
    let trained = host.finished()?;
    let report = &trained.report;
    eprintln!(
        "Kept {} from its {}: {}.",
        report.mode.name(),
        report.kept_epoch(),
        ajuste::train::honest::accuracy_summary(report.val_accuracy, report.num_train, report.num_val)
    );

    let counts: Vec<usize> = dataset.classes.iter().map(|c| c.samples.len()).collect();
    for (name, bytes) in bundle_files(WEIGHTS, &trained, Some(&counts)).map_err(|e| e.to_string())? {
        write(&name, &bytes)?;
    }
    std::fs::create_dir_all(args.out.join("charts")).map_err(|e| format!("{}: {e}", args.out.display()))?;
    for (name, svg) in report_svgs(&trained.report) {
        write(&format!("charts/{name}"), svg.as_bytes())?;
    }
    let fingerprint = dataset.fingerprint();
    let project = Project {
        model: Some(ProjectModel {
            weights: exported_model(WEIGHTS, &trained).map_err(|e| e.to_string())?,
            config: export::config_json_of(&trained.report),
            fingerprint,
            trained,
        }),
        dataset,
        options,
    };
    let bytes = images.project(project)?;
    write(&format!("project.{EXTENSION}"), &bytes)?;
    if stopped && deep && checkpoint.exists() {
        eprintln!(
            "Stopped early: the best epoch so far is kept. To go on: ajuste train {} --out {} --resume",
            args.data.display(),
            args.out.display()
        );
    } else {
        // A finished training leaves nothing to resume.
        let _ = std::fs::remove_file(&checkpoint);
        let _ = std::fs::remove_file(&options_path);
    }
    eprintln!("Wrote {}", args.out.display());
    Ok(())
}

fn evaluate(args: eval::EvalArgs) -> Result<(), String> {
    let (dataset, _, images) = data::load(&args.data)?;
    let (device, _) = device::pick(args.device)?;
    let predictor = Predictor::load(&read(&args.model)?, &device)?;
    let bar = indicatif::ProgressBar::new(dataset.num_images() as u64);
    let load = |keys: &[u64]| images.load(keys);
    let evaluation = eval::evaluate(&predictor, &dataset, &device, &load, &|done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&evaluation).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", evaluation.text());
    }
    Ok(())
}

fn predict(args: PredictArgs) -> Result<(), String> {
    let (device, _) = device::pick(args.device)?;
    let predictor = Predictor::load(&read(&args.model)?, &device)?;
    let mut answers = Vec::new();
    for path in &args.images {
        let pixels = prepare_rgb(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut prediction = pollster::block_on(predictor.predict(&pixels, &device))?;
        prediction.classes.truncate(args.top.max(1));
        if args.json {
            answers.push(serde_json::json!({ "image": path, "classes": prediction.classes }));
        } else {
            let classes: Vec<String> = prediction
                .classes
                .iter()
                .map(|c| format!("{} {:.1} %", c.label, c.probability * 100.0))
                .collect();
            println!("{}: {}", path.display(), classes.join(", "));
        }
    }
    if args.json {
        println!("{}", serde_json::Value::Array(answers));
    }
    Ok(())
}
