//! Issue 8's letters26 recipes through our own fine-tuning core, beside the PyTorch reference, plus fine-tuning
//! throughput (images/s of forward + backward + AdamW at batch 32, with the frozen prefix run every step as in
//! PyTorch's reference, and on cached cut activations).
//!
//!     cargo run --release --example bench_finetune [--features vulkan] -- \
//!         [--recipes head,last4,lora4,lora8,lora16,all,auto] [--seeds 0,1] [--epochs N] [--per-class N]
//!         [--throughput-steps K] [--batch N] [--no-accuracy] [--augment] [--views K] [--device cpu|vulkan]
//!         [--anatomy]
//!
//! Data: bench/data/letters26 (see its README). Default device: flex CPU;
//! `--device vulkan` (built with `--features vulkan`) a GPU through wgpu. burn's CUDA backend is not offered: its
//! build downloads an LLVM bundle from outside the package registries.
//! `--per-class N` keeps N training and 2N held-out images per class, `--epochs N` overrides every recipe's
//! epochs: both for quick checks only, since the PyTorch numbers are for the full recipes. `--views K`: the
//! augmentation bank's views per image (default 8; 0: a new view every epoch, the frozen prefix every step).
//! `--anatomy`: where a training step's time goes (CPU time recording its parts, wall time with and without a
//! read-back every step).

use std::time::Instant;

use ajuste::data::split::stratified_split;
use ajuste::data::{ClassData, Dataset, Sample};
use ajuste::finetune::{DeepTrainer, Phase, TrainData};
use ajuste::head::Trainer;
use ajuste::model::embed::{embed_batch, input_tensor};
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::TrainOptions;
use ajuste::options::{AugmentOptions, DeepOptions, FinetuneChoice, FinetuneMode};
use ajuste::predict::exported_model;
use ajuste::preprocess::prepare_rgb;
use ajuste::train::job::{Host, Job, run_job};
use ajuste::train::{EmbeddingCache, TrainEvent, Trained};
use burn::tensor::Device;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/data/letters26");
const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

/// (key, description, PyTorch without augmentation, with augmentation).
const RECIPES: [(&str, &str, f32, f32); 7] = [
    ("head", "head only (lr 1e-3, 50 epochs)", 0.828, 0.835),
    (
        "last4",
        "last 4 blocks + head conv unfrozen (lr 1e-4, head 1e-3, 30 ep)",
        0.900,
        0.927,
    ),
    (
        "lora4",
        "LoRA r16, last 4 blocks + head conv (lr 1e-3, 30 ep)",
        0.904,
        0.921,
    ),
    (
        "lora8",
        "LoRA r16, last 8 blocks + head conv (lr 1e-3, 30 ep)",
        0.933,
        0.945,
    ),
    ("lora16", "LoRA r16 on every 1×1 conv (lr 1e-3, 30 ep)", 0.938, 0.956),
    (
        "all",
        "all 16 blocks + head conv (stem frozen; lr 1e-4, 30 ep)",
        0.937,
        0.942,
    ),
    (
        "auto",
        "Auto: head only, then LoRA last 8; lower val loss kept",
        f32::NAN,
        f32::NAN,
    ),
];

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// Images per training step of the throughput rows (`--batch`, default 32).
fn batch() -> usize {
    arg("--batch").map_or(32, |b| b.parse().expect("--batch N"))
}

/// `--device cpu|vulkan` (vulkan needs its Cargo feature); default: the CPU.
fn device() -> (&'static str, Device) {
    match arg("--device").as_deref().unwrap_or("cpu") {
        #[cfg(feature = "vulkan")]
        "vulkan" => ("wgpu Vulkan", Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
        "cpu" => ("flex CPU", Device::flex()),
        other => panic!("--device {other}: not compiled in (feature vulkan) or unknown"),
    }
}

struct Letters {
    images: Vec<Vec<u8>>,
    labels: Vec<usize>,
    train: Vec<usize>,
    test: Vec<usize>,
}

fn load(per_class: Option<usize>) -> Letters {
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{DATA}/letters26_split.json")).expect("split")).unwrap();
    let mut out = Letters {
        images: Vec::new(),
        labels: Vec::new(),
        train: Vec::new(),
        test: Vec::new(),
    };
    for (part, keep) in [("train", per_class), ("test", per_class.map(|n| 2 * n))] {
        let mut per = [0usize; 26];
        for path in split[part].as_array().expect("a list of paths") {
            let path = path.as_str().unwrap();
            let class = (path.as_bytes()[0] - b'A') as usize;
            if keep.is_some_and(|k| per[class] >= k) {
                continue;
            }
            per[class] += 1;
            let bytes = std::fs::read(format!("{DATA}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"));
            let index = out.images.len();
            out.images
                .push(prepare_rgb(&bytes).unwrap_or_else(|e| panic!("{path}: {e}")));
            out.labels.push(class);
            if part == "train" {
                out.train.push(index)
            } else {
                out.test.push(index)
            }
        }
    }
    out
}

/// Held-out accuracy of a whole network (batches of 32).
fn accuracy(model: &EfficientNetLite0, data: &Letters, device: &Device) -> f32 {
    let mut correct = 0;
    for chunk in data.test.chunks(32) {
        let refs: Vec<&[u8]> = chunk.iter().map(|&i| data.images[i].as_slice()).collect();
        let logits = model.forward(input_tensor(&refs, device)).argmax(1);
        let predicted = pollster::block_on(logits.into_data_async()).unwrap().convert::<i64>();
        let predicted = predicted.try_to_vec::<i64>().unwrap();
        correct += chunk
            .iter()
            .zip(predicted)
            .filter(|&(&i, p)| data.labels[i] == p as usize)
            .count();
    }
    correct as f32 / data.test.len() as f32
}

fn train_data(data: &Letters) -> TrainData {
    // Only the fine-tuning images, re-indexed, with the reference's 80/20 stratified validation (seed 0).
    let images: Vec<Vec<u8>> = data.train.iter().map(|&i| data.images[i].clone()).collect();
    let labels: Vec<usize> = data.train.iter().map(|&i| data.labels[i]).collect();
    let split = stratified_split(&labels, 0.2, 0);
    TrainData {
        images,
        keys: Vec::new(),
        labels,
        num_classes: 26,
        train: split.train,
        val: split.val,
    }
}

fn deep_options(key: &str, seed: u64, epochs: Option<usize>) -> TrainOptions {
    let lora = |blocks| FinetuneMode::Lora {
        blocks,
        rank: 16,
        alpha: 16.0,
    };
    let mode = match key {
        "last4" => FinetuneMode::LastBlocks { blocks: 4 },
        "lora4" => lora(4),
        "lora8" => lora(8),
        "lora16" => lora(16),
        "all" => FinetuneMode::LastBlocks { blocks: 16 },
        other => panic!("unknown recipe {other}"),
    };
    // The reference trains every epoch and keeps the best: no early stopping.
    TrainOptions {
        epochs: epochs.unwrap_or(30),
        patience: 0,
        seed,
        deep: DeepOptions {
            augment: AugmentOptions {
                views: views(),
                ..Default::default()
            },
            ..Default::default()
        },
        ..TrainOptions::default()
    }
    .with_mode(mode)
}

/// `--views K`, or the app's default.
fn views() -> usize {
    arg("--views").map_or(AugmentOptions::default().views, |v| v.parse().unwrap())
}

/// Records a job's events (no clock needed beyond wall time, never stopped).
struct BenchHost(Instant, std::cell::RefCell<Option<Trained>>);

impl Host for BenchHost {
    fn now_seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
    async fn pause(&self) {}
    fn stop_requested(&self) -> bool {
        false
    }
    fn emit(&self, event: TrainEvent) {
        match event {
            TrainEvent::Finished(trained) => *self.1.borrow_mut() = Some(*trained),
            TrainEvent::Failed(e) => panic!("the Auto job failed: {e}"),
            _ => {}
        }
    }
}

/// Auto through the job the page runs, on the fine-tuning images (split by the job, 80/20 stratified, seed).
fn auto_job(base: &EfficientNetLite0, data: &Letters, options: TrainOptions, device: &Device) -> Trained {
    let mut classes: Vec<Vec<Sample>> = (0..26).map(|_| Vec::new()).collect();
    for &i in &data.train {
        classes[data.labels[i]].push(Sample::new(format!("{i}.png"), data.images[i].clone()));
    }
    let dataset = Dataset {
        classes: classes
            .into_iter()
            .enumerate()
            .map(|(c, samples)| ClassData::new(((b'A' + c as u8) as char).to_string(), samples))
            .collect(),
    };
    let host = BenchHost(Instant::now(), Default::default());
    let job = Job {
        model: base,
        device,
        dataset: &dataset,
        options,
        batch_size: 32,
    };
    pollster::block_on(run_job(job, &mut EmbeddingCache::default(), &host));
    host.1.into_inner().expect("the Auto job finished")
}

fn run_deep(trainer: &mut DeepTrainer) {
    while !trainer.is_done() {
        pollster::block_on(trainer.step()).unwrap();
    }
}

fn head_options(seed: u64, epochs: Option<usize>) -> TrainOptions {
    TrainOptions {
        epochs: epochs.unwrap_or(50),
        patience: 0,
        seed,
        ..TrainOptions::default()
    }
}

/// Held-out accuracy of one recipe and seed.
fn run_recipe(
    key: &str,
    seed: u64,
    epochs: Option<usize>,
    base: &EfficientNetLite0,
    data: &Letters,
    device: &Device,
    augment: bool,
) -> f32 {
    let transform = || AugmentOptions::default().transform().filter(|_| augment);
    match key {
        "head" => {
            let embed = |idx: &[usize]| -> Vec<f32> {
                idx.chunks(32)
                    .flat_map(|c| {
                        let refs: Vec<&[u8]> = c.iter().map(|&i| data.images[i].as_slice()).collect();
                        pollster::block_on(embed_batch(base, &refs, device)).unwrap()
                    })
                    .collect()
            };
            let td = train_data(data);
            let mut trainer = Trainer::new(
                embed(&data.train),
                1280,
                td.labels,
                td.train,
                td.val,
                26,
                head_options(seed, epochs),
            )
            .unwrap();
            while !trainer.is_done() {
                trainer.step_epoch();
            }
            let test = embed(&data.test);
            let predicted = trainer.best().0.predict(&test, data.test.len());
            let hits = data
                .test
                .iter()
                .zip(predicted)
                .filter(|&(&i, p)| data.labels[i] == p)
                .count();
            hits as f32 / data.test.len() as f32
        }
        "auto" => {
            // The shipped Auto, as the page runs it (`run_job`): the page's options but for the seed, no early
            // stopping (as the reference) and `--epochs`; the head run's epochs are the same as LoRA's.
            let options = TrainOptions {
                finetune: FinetuneChoice::Auto,
                val_fraction: 0.2,
                epochs: epochs.unwrap_or(30),
                patience: 0,
                seed,
                deep: DeepOptions {
                    augment: AugmentOptions {
                        enabled: augment,
                        views: views(),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..TrainOptions::default()
            };
            let trained = auto_job(base, data, options, device);
            eprintln!(
                "  auto, seed {seed}: {}",
                trained.report.explanation.as_deref().unwrap_or_default()
            );
            let weights = std::fs::read(WEIGHTS).expect("weights");
            let kept = load_efficientnet(&exported_model(&weights, &trained).expect("export"), device).expect("kept");
            accuracy(&kept, data, device)
        }
        _ => {
            let options = deep_options(key, seed, epochs);
            let mut trainer = DeepTrainer::new(base, train_data(data), options, transform()).unwrap();
            run_deep(&mut trainer);
            accuracy(&trainer.best_model(), data, device)
        }
    }
}

/// images/s of `steps` training steps at batch `--batch` (default 32; the first step is a warm-up): with `cached`, on activations
/// cached at the cut (the caching itself not timed); otherwise through the frozen prefix every step.
fn throughput(key: &str, steps: usize, cached: bool, base: &EfficientNetLite0, data: &Letters) -> f64 {
    let mut td = train_data(data);
    td.train.append(&mut td.val);
    let options = deep_options(key, 0, Some(1000));
    let options = TrainOptions {
        batch_size: batch(),
        deep: DeepOptions {
            cache_bytes: if cached { options.deep.cache_bytes } else { 0 },
            ..options.deep
        },
        ..options
    };
    let mut trainer = DeepTrainer::new(base, td, options, None).unwrap();
    while pollster::block_on(trainer.step()).unwrap().phase != Phase::Training {}
    let start = Instant::now();
    let mut images = 0;
    for _ in 0..steps {
        images += pollster::block_on(trainer.step()).unwrap().images;
    }
    images as f64 / start.elapsed().as_secs_f64()
}

/// Where a training step's time goes, on random cut activations already on the device (batch 32, 26 classes):
/// per step, the CPU time to record the forward, the backward and the two AdamW steps, and the wall time with a
/// read-back after every step (as the trainer does) or only after the last one; then the wall time with the
/// frozen prefix run every step on random pixels already on the device and one read-back, which is how
/// `bench/pytorch_finetune.py` times PyTorch (no upload, no read-back per step). Milliseconds.
fn anatomy(key: &str, steps: usize, base: &EfficientNetLite0, device: &Device) -> [f64; 7] {
    use ajuste::finetune::optim::{AdamW, FlatAdamW};
    use ajuste::finetune::{Tail, classifier_from_head};
    use ajuste::rng::Rng;
    use burn::module::Module;
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, Int, Tensor, TensorData};

    let options = deep_options(key, 0, None);
    let mode = options.deep_mode().expect("a deep recipe");
    let cut = mode.cut();
    let [c, h, w] = ajuste::finetune::cache::cut_shape(cut);
    let autodiff = device.clone().autodiff();
    let x = Tensor::<4>::random([32, c, h, w], Distribution::Uniform(0.0, 6.0), device);
    let labels: Vec<i64> = (0..32).map(|i| i % 26).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [32]), &autodiff);
    let mut rng = Rng::new(0);
    let head = ajuste::head::Head::new(ajuste::model::EMBEDDING_DIM, 26, 0, 0.0, &mut rng);
    let mut tail = Tail::new(base, mode, &mut rng).train();
    let mut classifier = classifier_from_head(&head, device).train();
    let config = AdamW::new(options.deep.weight_decay);
    let (mut opt_head, mut opt_tail) = (FlatAdamW::new(config), FlatAdamW::new(config));
    let sync = |t: Tensor<1>| pollster::block_on(t.into_data_async()).unwrap();
    let pixels = Tensor::<4>::random([32, 3, 224, 224], Distribution::Uniform(-1.0, 1.0), device);
    let mut step = |times: &mut [f64; 4], prefix: bool| {
        let t = Instant::now();
        let cut_input = match prefix {
            true => base.blocks(base.stem(pixels.clone()), 0, cut),
            false => x.clone(),
        };
        let logits = classifier.forward(tail.forward(cut_input.autodiff()));
        let loss = CrossEntropyLossConfig::new().init(&autodiff).forward(logits, y.clone());
        let t1 = Instant::now();
        let mut grads = loss.backward();
        let g_head = GradientsParams::from_module(&mut grads, &classifier);
        let g_tail = GradientsParams::from_module(&mut grads, &tail);
        let t2 = Instant::now();
        classifier = opt_head.step(1e-3, classifier.clone(), g_head);
        tail = opt_tail.step(1e-4, tail.clone(), g_tail);
        let t3 = Instant::now();
        for (acc, d) in times.iter_mut().zip([t1 - t, t2 - t1, t3 - t2, t3 - t]) {
            *acc += d.as_secs_f64() * 1e3;
        }
        loss.inner()
    };
    for prefix in [false, true] {
        for _ in 0..3 {
            sync(step(&mut [0.0; 4], prefix));
        }
    }
    let mut record = [0.0; 4];
    let start = Instant::now();
    for _ in 0..steps {
        sync(step(&mut record, false));
    }
    let each = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let mut one_read_back = |prefix: bool| {
        let start = Instant::now();
        let mut last = None;
        for _ in 0..steps {
            last = Some(step(&mut [0.0; 4], prefix));
        }
        sync(last.unwrap());
        start.elapsed().as_secs_f64() * 1e3 / steps as f64
    };
    let once = one_read_back(false);
    let with_prefix = one_read_back(true);
    let n = steps as f64;
    [
        record[0] / n,
        record[1] / n,
        record[2] / n,
        record[3] / n,
        each,
        once,
        with_prefix,
    ]
}

fn main() {
    let keys: Vec<String> = arg("--recipes").map_or_else(
        || RECIPES.iter().map(|r| r.0.to_string()).collect(),
        |s| s.split(',').map(String::from).collect(),
    );
    let seeds: Vec<u64> = arg("--seeds").map_or(vec![0, 1], |s| s.split(',').map(|v| v.parse().unwrap()).collect());
    let epochs: Option<usize> = arg("--epochs").map(|v| v.parse().unwrap());
    let per_class: Option<usize> = arg("--per-class").map(|v| v.parse().unwrap());
    let steps: usize = arg("--throughput-steps").map_or(10, |v| v.parse().unwrap());
    let (device_name, device) = device();
    let base = load_efficientnet(&std::fs::read(WEIGHTS).expect("weights"), &device).expect("weights load");
    let data = load(per_class);
    eprintln!(
        "{} fine-tuning and {} held-out images on {device_name}",
        data.train.len(),
        data.test.len()
    );

    if !std::env::args().any(|a| a == "--no-accuracy") {
        let augment = std::env::args().any(|a| a == "--augment");
        let column = if augment {
            format!("aug, {} views", views())
        } else {
            "no aug".to_string()
        };
        println!(
            "\n| recipe | PyTorch (no aug) | PyTorch (aug) | ours ({column}, mean of seeds {seeds:?}) | time/seed |"
        );
        println!("|---|---:|---:|---:|---:|");
        for key in &keys {
            let (_, description, torch, torch_aug) = *RECIPES.iter().find(|r| r.0 == key).expect("known recipe");
            let start = Instant::now();
            let accs: Vec<f32> = seeds
                .iter()
                .map(|&s| run_recipe(key, s, epochs, &base, &data, &device, augment))
                .collect();
            let mean = accs.iter().sum::<f32>() / accs.len() as f32;
            let per_seed = start.elapsed().as_secs_f64() / seeds.len() as f64;
            let fmt = |v: f32| {
                if v.is_nan() {
                    "–".to_string()
                } else {
                    format!("{v:.3}")
                }
            };
            println!(
                "| {description} | {} | {} | {mean:.3} | {per_seed:.0} s |",
                fmt(torch),
                fmt(torch_aug)
            );
        }
        if augment {
            println!(
                "\nWith --augment, head only still trains on embeddings of the unaugmented images (as the app does)."
            );
        }
    }
    if std::env::args().any(|a| a == "--anatomy") {
        println!(
            "\n| step anatomy ({device_name}, batch 32, cut on the device), ms/step | record forward | record backward \
             | record AdamW | record total | wall, read-back every step | wall, one read-back \
             | wall, prefix every step on device pixels, one read-back (images/s) |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for key in keys.iter().filter(|k| k.starts_with("lora") || k.starts_with("last")) {
            let t = anatomy(key, steps.max(5), &base, &device);
            println!(
                "| {key} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} ({:.0}) |",
                t[0],
                t[1],
                t[2],
                t[3],
                t[4],
                t[5],
                t[6],
                32e3 / t[6]
            );
        }
    }
    if steps > 0 {
        println!(
            "\n| fine-tuning throughput ({device_name}, batch {}) | images/s, prefix every step | images/s, cached cut |",
            batch()
        );
        println!("|---|---:|---:|");
        for (key, what) in [
            ("lora8", "LoRA r16, last 8 blocks + head conv"),
            ("last4", "last 4 blocks + head conv unfrozen"),
        ] {
            let (full, cached) = (
                throughput(key, steps, false, &base, &data),
                throughput(key, steps, true, &base, &data),
            );
            println!("| {what} | {full:.1} | {cached:.1} |");
        }
    }
}
