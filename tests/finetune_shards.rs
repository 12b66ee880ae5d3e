//! Data-parallel deep training (`finetune::shard`): with a fixed number of parts per batch, the same run on 1, 2
//! or 4 threads (0, 1 or 3 helpers) gives the same model bit for bit, and the same as whole batches up to float
//! rounding; a failing helper costs nothing but time; a damaged share is refused with its reason.
//! The helpers here are in-process stand-ins for the page's workers; every request and answer goes through the
//! same bytes the workers exchange.

use std::cell::{Cell, RefCell};

use ajuste::finetune::shard::{
    Helpers, ShardAnswer, ShardInput, ShardRequest, ShardSpec, ShardTask, ShardWorker, answer,
};
use ajuste::finetune::{DeepTrainer, TrainData};
use ajuste::floats::max_abs_diff;
use ajuste::model::{ConvUpdate, EfficientNetLite0, load_efficientnet};
use ajuste::options::{AugmentOptions, DeepOptions, FinetuneMode, TrainOptions};
use ajuste::rng::Rng;
use burn::tensor::Device;

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

/// `count` helpers in this process, each with its own trainable copy; helper `fail` (if any) always fails.
struct Local<'a> {
    base: &'a EfficientNetLite0,
    count: usize,
    fail: Option<usize>,
    slots: RefCell<Vec<Option<ShardWorker>>>,
    answered: Cell<usize>,
}

impl<'a> Local<'a> {
    fn new(base: &'a EfficientNetLite0, count: usize, fail: Option<usize>) -> Self {
        Self {
            base,
            count,
            fail,
            slots: RefCell::new((0..count).map(|_| None).collect()),
            answered: Cell::new(0),
        }
    }
}

impl Helpers for Local<'_> {
    fn available(&self) -> usize {
        self.count
    }
    async fn ask(&self, requests: Vec<ShardRequest>) -> Vec<Result<ShardAnswer, String>> {
        let mut answers = Vec::new();
        for (i, request) in requests.into_iter().enumerate() {
            if Some(i) == self.fail {
                answers.push(Err("this helper is gone".to_string()));
                continue;
            }
            // Through the wire format, as between workers.
            let bytes = request.to_bytes();
            let spec: ShardSpec = serde_json::from_str(&serde_json::to_string(&request.spec).unwrap()).unwrap();
            let request = ShardRequest::from_bytes(spec, &bytes).unwrap();
            let mut slot = self.slots.borrow_mut()[i].take();
            answers.push(answer(self.base, &mut slot, request).await);
            self.slots.borrow_mut()[i] = slot;
            self.answered.set(self.answered.get() + 1);
        }
        answers
    }
}

fn model() -> EfficientNetLite0 {
    load_efficientnet(&std::fs::read(WEIGHTS).expect("repo weights"), &Device::flex()).unwrap()
}

/// Horizontal vs vertical stripes, random period and phase: 7 to train on (so batches of 4 and 3 split unevenly),
/// 3 to validate.
fn data() -> TrainData {
    let mut rng = Rng::new(11);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for _ in 0..5 {
            let period = 8 + rng.below(24);
            let phase = rng.below(period);
            let mut im = vec![0u8; 224 * 224 * 3];
            for (i, px) in im.chunks_mut(3).enumerate() {
                let t = if class == 0 { i / 224 } else { i % 224 };
                px.fill(if (t + phase) % period < period / 2 { 230 } else { 30 });
            }
            images.push(im);
            labels.push(class);
        }
    }
    TrainData {
        images,
        keys: Vec::new(),
        labels,
        num_classes: 2,
        train: vec![0, 1, 2, 5, 6, 7, 8],
        val: vec![3, 4, 9],
    }
}

fn run(base: &EfficientNetLite0, options: &TrainOptions, parts: usize, helpers: &Local, augment: bool) -> DeepTrainer {
    let transform: Option<ajuste::finetune::Augment> = augment.then(|| {
        Box::new(|pixels: &[u8], rng: &mut Rng| {
            let shift = rng.below(40) as u8;
            pixels.iter().map(|p| p.saturating_add(shift)).collect()
        }) as ajuste::finetune::Augment
    });
    let mut trainer = DeepTrainer::new(base, data(), options.clone(), transform)
        .unwrap()
        .with_parts(parts);
    while !trainer.is_done() {
        pollster::block_on(trainer.step_with(helpers)).unwrap();
    }
    trainer
}

fn trained_values(trainer: &DeepTrainer) -> Vec<f32> {
    let delta = pollster::block_on(trainer.best_delta()).unwrap();
    let head = pollster::block_on(trainer.best_head()).unwrap();
    let mut out: Vec<f32> = delta
        .convs
        .iter()
        .flat_map(|c| match &c.update {
            ConvUpdate::Lora { a, b, .. } => [a.clone(), b.clone()].concat(),
            ConvUpdate::Full { weight, bias } => [weight.clone(), bias.clone()].concat(),
        })
        .collect();
    out.extend(head.out.weight.iter().chain(&head.out.bias));
    out
}

/// The same run alone and shared out: the same epochs, losses and kept parameters, up to float rounding.
fn assert_close(alone: &DeepTrainer, shared: &DeepTrainer, what: &str) {
    let (a, b) = (alone.history(), shared.history());
    assert_eq!(a.len(), b.len(), "{what}: epochs differ");
    for (x, y) in a.iter().zip(b) {
        for (name, p, q) in [
            ("train loss", x.train_loss, y.train_loss),
            ("val loss", x.val_loss, y.val_loss),
            ("train accuracy", x.train_accuracy, y.train_accuracy),
            ("val accuracy", x.val_accuracy, y.val_accuracy),
        ] {
            assert!(
                (p - q).abs() < 1e-4,
                "{what}: epoch {} {name} {p} alone, {q} shared",
                x.epoch
            );
        }
    }
    assert_eq!(
        alone.best_metrics().map(|m| m.epoch),
        shared.best_metrics().map(|m| m.epoch),
        "{what}: another epoch kept"
    );
    let delta_alone = pollster::block_on(alone.best_delta()).unwrap();
    let delta_shared = pollster::block_on(shared.best_delta()).unwrap();
    assert_eq!(delta_alone.convs.len(), delta_shared.convs.len());
    let gap = max_abs_diff(&trained_values(alone), &trained_values(shared));
    assert!(gap < 1e-3, "{what}: the kept parameters differ by {gap}");
}

/// The same run, bit for bit: history, kept epoch and every kept value.
fn assert_identical(alone: &DeepTrainer, shared: &DeepTrainer, what: &str) {
    assert_eq!(alone.history(), shared.history(), "{what}: another history");
    assert_eq!(
        alone.best_metrics(),
        shared.best_metrics(),
        "{what}: another epoch kept"
    );
    assert!(
        trained_values(alone) == trained_values(shared),
        "{what}: other kept values"
    );
}

#[test]
fn lora_gives_the_same_model_on_one_two_and_four_threads() {
    let base = model();
    let options = TrainOptions {
        epochs: 3,
        batch_size: 4,
        learning_rate: 3e-3,
        patience: 8,
        ..TrainOptions::default()
    }
    .with_mode(FinetuneMode::Lora {
        blocks: 2,
        rank: 4,
        alpha: 4.0,
    });
    let whole = run(&base, &options, 1, &Local::new(&base, 0, None), false);
    assert!(whole.history()[2].train_loss < whole.history()[0].train_loss);
    // Batches of 4 and 3 in 3 parts: parts of 2, 1, 1 and of 1, 1, 1.
    let alone = run(&base, &options, 3, &Local::new(&base, 0, None), false);
    assert_close(&whole, &alone, "LoRA in 3 parts on one thread");
    for count in [1, 3] {
        let helpers = Local::new(&base, count, None);
        let shared = run(&base, &options, 3, &helpers, false);
        assert!(helpers.answered.get() > 0, "{count} helper(s) were never asked");
        assert_identical(&alone, &shared, &format!("LoRA in 3 parts with {count} helper(s)"));
    }
    // Without fixed parts, one per thread: the same up to rounding.
    let helpers = Local::new(&base, 1, None);
    assert_close(
        &whole,
        &run(&base, &options, 1, &helpers, false),
        "LoRA on 2 threads, one part each",
    );
    assert!(helpers.answered.get() > 0);
}

#[test]
fn last_blocks_with_augmentation_and_a_failing_helper_give_the_same_model() {
    let base = model();
    let options = TrainOptions {
        epochs: 2,
        batch_size: 4,
        patience: 8,
        deep: DeepOptions {
            // No bank: every epoch's views travel as pixels and the helpers run the frozen prefix.
            augment: AugmentOptions {
                views: 0,
                ..Default::default()
            },
            ..Default::default()
        },
        ..TrainOptions::default()
    }
    .with_mode(FinetuneMode::LastBlocks { blocks: 1 });
    let alone = run(&base, &options, 4, &Local::new(&base, 0, None), true);
    let helpers = Local::new(&base, 2, Some(0));
    let shared = run(&base, &options, 4, &helpers, true);
    assert!(helpers.answered.get() > 0, "the working helper was never asked");
    assert_identical(&alone, &shared, "last blocks, augmented, one helper failing");
    assert_close(
        &run(&base, &options, 1, &Local::new(&base, 0, None), true),
        &shared,
        "last blocks, whole batches",
    );
}

#[test]
fn a_damaged_share_is_refused_with_its_reason() {
    let spec = ShardSpec {
        task: ShardTask::Evaluate,
        mode: FinetuneMode::Lora {
            blocks: 1,
            rank: 4,
            alpha: 4.0,
        },
        num_classes: 2,
        parts: vec![1],
        params: 3,
        pixels: true,
    };
    let request = ShardRequest {
        spec: spec.clone(),
        params: vec![0.5; 3],
        labels: vec![1],
        input: ShardInput::Pixels(vec![7; 224 * 224 * 3]),
    };
    let bytes = request.to_bytes();
    assert_eq!(ShardRequest::from_bytes(spec.clone(), &bytes).unwrap(), request);
    let short = ShardRequest::from_bytes(spec.clone(), &bytes[1..]).unwrap_err();
    assert!(short.contains("bytes, expected"), "{short}");
    let mut bad_label = bytes.clone();
    bad_label[12..16].copy_from_slice(&5u32.to_le_bytes());
    let label = ShardRequest::from_bytes(spec, &bad_label).unwrap_err();
    assert!(label.contains("label 5"), "{label}");
}
