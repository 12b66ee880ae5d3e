//! The deep trainer on images kept out of memory (as the page keeps them): each step's pixels are asked for,
//! read in and dropped after, a batch or two at a time, and the model is the one trained with every image in
//! memory. Rounds: a large set validates several times a pass, and resumes mid-pass as if never stopped.

use ajuste::data::pixel_key;
use ajuste::finetune::{DeepTrainer, TrainData};
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::{FinetuneMode, TrainOptions};
use ajuste::rng::Rng;
use burn::tensor::Device;

fn model() -> EfficientNetLite0 {
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    load_efficientnet(&weights, &Device::flex()).unwrap()
}

/// Ten noisy images in two classes (bright and dark).
fn data() -> TrainData {
    let mut rng = Rng::new(5);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let class = i % 2;
        let base = if class == 0 { 60 } else { 180 };
        images.push(
            (0..224 * 224 * 3)
                .map(|_| base + (rng.next_f32() * 60.0) as u8)
                .collect::<Vec<u8>>(),
        );
        labels.push(class);
    }
    TrainData {
        images,
        keys: Vec::new(),
        labels,
        num_classes: 2,
        train: vec![0, 1, 2, 3, 4, 5, 6, 7],
        val: vec![8, 9],
    }
}

/// Augmented LoRA (one fixed view per image) with a cache too small for the training views: 4 of the 8 are
/// cached, the others read and run through the frozen prefix at every epoch.
fn options() -> TrainOptions {
    let mut options = TrainOptions {
        epochs: 3,
        batch_size: 3,
        patience: 0,
        ..TrainOptions::default()
    }
    .with_mode(FinetuneMode::Lora {
        blocks: 1,
        rank: 2,
        alpha: 2.0,
    });
    options.deep.augment.enabled = true;
    options.deep.augment.views = 1;
    options.deep.cache_bytes = 6 * ajuste::finetune::cut_bytes_per_image(15);
    options
}

fn trainer(data: TrainData) -> DeepTrainer {
    let options = options();
    let augment = options.deep.augment.transform();
    DeepTrainer::new(&model(), data, options, augment).unwrap()
}

#[test]
fn images_kept_elsewhere_are_read_in_a_step_at_a_time_with_the_same_model() {
    read_in_a_step_at_a_time(1);
}

/// In parts (as the CPU path computes every batch, shared with helpers): a part with any view not cached sends
/// the pixels of all its images.
#[test]
fn images_kept_elsewhere_are_read_in_for_batches_computed_in_parts() {
    read_in_a_step_at_a_time(4);
}

fn read_in_a_step_at_a_time(parts: usize) {
    let trainer = |data| trainer(data).with_parts(parts);
    let full = data();
    let mut in_memory = trainer(full.clone());
    while !in_memory.is_done() {
        pollster::block_on(in_memory.step()).unwrap();
    }

    let stored = TrainData {
        images: vec![Vec::new(); full.images.len()],
        keys: full.images.iter().map(|p| pixel_key(p)).collect(),
        ..full.clone()
    };
    let mut streaming = trainer(stored);
    let (mut reads, mut most_held) = (0, 0);
    while !streaming.is_done() {
        let now = streaming.wanted(0);
        if !now.is_empty() {
            let refused = pollster::block_on(streaming.step());
            assert!(refused.is_err(), "a step whose images are not read in is refused");
        }
        let soon = streaming.wanted(1);
        assert!(now.len() <= 3 && soon.len() <= 3, "a batch at a time: {now:?} {soon:?}");
        reads += now.len();
        streaming
            .supply(&now, now.iter().map(|&i| full.images[i].clone()).collect())
            .unwrap();
        pollster::block_on(streaming.step()).unwrap();
        most_held = most_held.max(streaming.images_held());
    }
    assert_eq!(
        streaming.history(),
        in_memory.history(),
        "the same model, step for step"
    );
    assert!(most_held <= 3, "held at most the next batch: {most_held}");
    // 2 validation + 4 training views cached; the other 4 training images are read each epoch.
    assert!(
        reads > full.images.len(),
        "images read again when their views are not cached: {reads}"
    );
}

#[test]
fn rounds_validate_within_a_pass_and_resume_mid_pass_as_if_never_stopped() {
    let rounds = |t: DeepTrainer| t.with_round_images(3);
    let mut whole = rounds(trainer(data()));
    assert_eq!(whole.rounds_per_pass(), 3, "8 training images in rounds of at most 3");
    assert_eq!(whole.planned_rounds(), 9);
    assert_eq!(whole.steps_through(3), 3, "one step of 3 per round");
    let mut checkpoints = Vec::new();
    while !whole.is_done() {
        let report = pollster::block_on(whole.step()).unwrap();
        if report.epoch_metrics.is_some() && !whole.is_done() {
            checkpoints.push(pollster::block_on(whole.checkpoint()).unwrap());
        }
    }
    assert_eq!(whole.history().len(), 9);
    assert!(whole.stop_reason().contains("9 rounds"), "{}", whole.stop_reason());
    // From the checkpoint after round 4 (the second round of the second pass).
    let mut resumed = rounds(trainer(data())).resume(&checkpoints[3]).unwrap();
    while !resumed.is_done() {
        pollster::block_on(resumed.step()).unwrap();
    }
    assert_eq!(resumed.history(), whole.history());
}

#[test]
fn a_planned_cut_shortens_the_schedule_and_says_why() {
    let mut t = trainer(data());
    t.plan_rounds(2, "completed the 2 epochs the 1 min time budget holds".into());
    assert_eq!(t.planned_rounds(), 2);
    assert_eq!(t.total_steps(), t.steps_through(2));
    while !t.is_done() {
        pollster::block_on(t.step()).unwrap();
    }
    assert_eq!(t.history().len(), 2);
    assert_eq!(t.stop_reason(), "completed the 2 epochs the 1 min time budget holds");
}

#[test]
fn a_budget_spent_early_ends_the_caching_and_the_first_round_soon_after() {
    let mut t = trainer(data());
    assert!(t.is_caching());
    pollster::block_on(t.step()).unwrap();
    t.end_caching();
    assert!(t.is_training(), "training starts with the views cached so far");
    pollster::block_on(t.step()).unwrap();
    // 8 training images in batches of 3: the round ends after its next step, at 6 images, not 8.
    t.end_round();
    let mut steps = 1;
    while t.history().is_empty() {
        let report = pollster::block_on(t.step()).unwrap();
        steps += usize::from(report.phase == ajuste::finetune::Phase::Training);
    }
    assert_eq!((steps, t.steps_done(), t.steps_at_round(0)), (2, 2, 2));
    assert!(t.history()[0].val_loss.is_finite());
}
