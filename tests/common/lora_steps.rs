//! A few LoRA steps on the shipped backbone, the same on every device: the native test pins the losses in
//! `tests/fixtures/lora_steps.json`, and the in-browser tests check the CPU and WebGPU paths against them.

use ajuste::finetune::{DeepTrainer, Phase, TrainData};
use ajuste::model::EfficientNetLite0;
use ajuste::options::{FinetuneMode, TrainOptions};

pub const FIXTURE: &str = "tests/fixtures/lora_steps.json";

/// Two classes of stripes (horizontal, vertical) at different periods: 2 + 2 to train on, 1 + 1 to validate.
fn data() -> TrainData {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (class, periods) in [(0, [10, 14, 22]), (1, [12, 18, 26])] {
        for period in periods {
            let mut im = vec![0u8; 224 * 224 * 3];
            for (i, px) in im.chunks_mut(3).enumerate() {
                let t = if class == 0 { i / 224 } else { i % 224 };
                px.fill(if t % period < period / 2 { 220 } else { 40 });
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
        train: vec![0, 1, 3, 4],
        val: vec![2, 5],
    }
}

/// (train loss, validation loss) of each of 3 epochs of LoRA r4 on the last 2 blocks + head conv, batch 4,
/// resumed from a checkpoint after the first.
pub async fn lora_history(model: &EfficientNetLite0) -> Vec<[f32; 2]> {
    let options = TrainOptions {
        epochs: 3,
        batch_size: 4,
        patience: 0,
        seed: 7,
        ..TrainOptions::default()
    }
    .with_mode(FinetuneMode::Lora {
        blocks: 2,
        rank: 4,
        alpha: 4.0,
    });
    let mut trainer = DeepTrainer::new(model, data(), options.clone(), None).expect("trainer");
    let mut resumed = false;
    loop {
        let report = trainer.step().await.expect("step");
        if report.phase == Phase::Done {
            break;
        }
        // After the first epoch the run goes on from a checkpoint, as after a reload: the history must not
        // notice, and taking it must need no synchronous read (it runs on WebGPU in the browser test too).
        if report.epoch_metrics.is_some() && !resumed {
            let bytes = trainer.checkpoint().await.expect("a checkpoint");
            let fresh = DeepTrainer::new(model, data(), options.clone(), None).expect("trainer");
            trainer = fresh.resume(&bytes).expect("resume from the checkpoint");
            resumed = true;
        }
    }
    assert!(resumed, "the run ended before its first checkpoint");
    trainer.history().iter().map(|m| [m.train_loss, m.val_loss]).collect()
}

/// Largest |difference| between two histories of the same length.
pub fn max_diff(a: &[[f32; 2]], b: &[[f32; 2]]) -> f32 {
    assert_eq!(a.len(), b.len(), "histories of different lengths");
    let flat = |h: &[[f32; 2]]| h.iter().flatten().copied().collect::<Vec<_>>();
    ajuste::floats::max_abs_diff(&flat(a), &flat(b))
}
