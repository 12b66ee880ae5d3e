//! The deep trainer's augmentation bank and its checkpoints: a run resumed from the bytes of an epoch's end goes
//! on exactly as the uninterrupted run; a checkpoint refuses other data; the bank caches each view once.

use ajuste::finetune::{DeepTrainer, TrainData};
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::AugmentOptions;
use ajuste::options::{DeepOptions, FinetuneMode, TrainOptions};
use ajuste::rng::Rng;
use burn::tensor::Device;

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

fn model() -> EfficientNetLite0 {
    load_efficientnet(&std::fs::read(WEIGHTS).expect("repo weights"), &Device::flex()).unwrap()
}

/// Two classes: a dark square left or right of centre, on white, at a random height and size.
fn data() -> TrainData {
    let mut rng = Rng::new(3);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for _ in 0..6 {
            let (r, cy) = (10 + rng.below(20), 60 + rng.below(100));
            let cx = if class == 0 { 60 } else { 164 };
            let mut im = vec![255u8; 224 * 224 * 3];
            for y in cy - r..cy + r {
                for x in cx - r..cx + r {
                    im[(y * 224 + x) * 3..][..3].fill(20);
                }
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
        train: vec![0, 1, 2, 3, 4, 6, 7, 8, 9, 10],
        val: vec![5, 11],
    }
}

fn options(mode: FinetuneMode, views: usize) -> TrainOptions {
    TrainOptions {
        epochs: 4,
        batch_size: 4,
        learning_rate: 3e-3,
        patience: 0,
        seed: 5,
        deep: DeepOptions {
            augment: AugmentOptions {
                views,
                ..Default::default()
            },
            ..Default::default()
        },
        ..TrainOptions::default()
    }
    .with_mode(mode)
}

const LORA: FinetuneMode = FinetuneMode::Lora {
    blocks: 1,
    rank: 4,
    alpha: 4.0,
};

fn trainer(model: &EfficientNetLite0, data: TrainData, options: &TrainOptions, augment: bool) -> DeepTrainer {
    let transform = AugmentOptions::default().transform().filter(|_| augment);
    DeepTrainer::new(model, data, options.clone(), transform).unwrap()
}

fn finish(t: &mut DeepTrainer) {
    while !t.is_done() {
        pollster::block_on(t.step()).unwrap();
    }
}

/// Steps until `epochs` epochs are done and returns the checkpoint then.
fn checkpoint_after(t: &mut DeepTrainer, epochs: usize) -> Vec<u8> {
    while t.history().len() < epochs {
        pollster::block_on(t.step()).unwrap();
    }
    pollster::block_on(t.checkpoint()).unwrap()
}

fn resumes_exactly(mode: FinetuneMode, views: usize, augment: bool, at: usize) {
    let model = model();
    let opts = options(mode, views);
    let mut whole = trainer(&model, data(), &opts, augment);
    finish(&mut whole);

    let mut first = trainer(&model, data(), &opts, augment);
    let bytes = checkpoint_after(&mut first, at);
    assert!(
        pollster::block_on(first.step()).is_ok(),
        "taking a checkpoint leaves the run going"
    );
    let mut resumed = trainer(&model, data(), &opts, augment).resume(&bytes).unwrap();
    assert_eq!(resumed.history(), &whole.history()[..at], "the epochs done come back");
    finish(&mut resumed);
    assert_eq!(
        resumed.history(),
        whole.history(),
        "{mode:?}: the next epochs are the same"
    );
    assert_eq!(resumed.best_metrics(), whole.best_metrics());
    assert_eq!(
        pollster::block_on(resumed.best_delta()).unwrap(),
        pollster::block_on(whole.best_delta()).unwrap()
    );
    assert_eq!(resumed.stop_reason(), whole.stop_reason());
}

#[test]
fn lora_with_the_augmentation_bank_resumes_exactly() {
    resumes_exactly(LORA, 2, true, 1);
}

#[test]
fn last_blocks_without_augmentation_resume_exactly() {
    resumes_exactly(FinetuneMode::LastBlocks { blocks: 1 }, 4, false, 2);
}

#[test]
fn a_checkpoint_refuses_other_data_other_options_and_damage() {
    let model = model();
    let opts = options(LORA, 2);
    let mut t = trainer(&model, data(), &opts, true);
    assert!(
        pollster::block_on(t.checkpoint()).is_err(),
        "no checkpoint before an epoch ends"
    );
    let bytes = checkpoint_after(&mut t, 1);

    let mut changed = data();
    changed.images[3][1000] ^= 0xff;
    let err = trainer(&model, changed, &opts, true).resume(&bytes).err().unwrap();
    assert!(err.contains("images changed"), "{err}");
    let mut relabelled = data();
    relabelled.labels[0] = 1;
    assert!(trainer(&model, relabelled, &opts, true).resume(&bytes).is_err());

    let other = TrainOptions {
        epochs: 9,
        ..opts.clone()
    };
    let err = trainer(&model, data(), &other, true).resume(&bytes).err().unwrap();
    assert!(err.contains("options changed"), "{err}");

    let err = trainer(&model, data(), &opts, true)
        .resume(&bytes[..bytes.len() - 3])
        .err()
        .unwrap();
    assert!(err.contains("truncated"), "{err}");
    let err = trainer(&model, data(), &opts, true)
        .resume(b"not a checkpoint")
        .err()
        .unwrap();
    assert!(err.contains("not a training checkpoint"), "{err}");
}

#[test]
fn the_bank_caches_each_view_once_and_shrinks_to_the_budget() {
    let model = model();
    let per = ajuste::finetune::cut_bytes_per_image(LORA.cut());
    let mut t = trainer(&model, data(), &options(LORA, 3), true);
    let _ = checkpoint_after(&mut t, 1);
    assert_eq!(
        t.cache().len(),
        2 + 3 * 10,
        "validation images and 3 views of each training image"
    );
    // A budget for the validation images and two views: the bank holds two.
    let small = TrainOptions {
        deep: DeepOptions {
            cache_bytes: (2 + 2 * 10) * per,
            ..options(LORA, 3).deep
        },
        ..options(LORA, 3)
    };
    let mut t = trainer(&model, data(), &small, true);
    let _ = checkpoint_after(&mut t, 1);
    assert_eq!(t.cache().len(), 2 + 2 * 10);
    // No bank: only the validation images are cached; training views are new every epoch.
    let mut t = trainer(&model, data(), &options(LORA, 0), true);
    let _ = checkpoint_after(&mut t, 1);
    assert_eq!(t.cache().len(), 2);
}
