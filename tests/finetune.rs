//! Deep fine-tuning: LoRA algebra and gradients on tiny modules, then a few real steps on the pretrained
//! backbone (repo's public/models weights) with a short synthetic dataset.

mod common;

use ajuste::finetune::{DeepTrainer, Phase, TrainData, cut_bytes_per_image};
use ajuste::floats::max_abs_diff;
use ajuste::model::efficientnet::BlockSpec;
use ajuste::model::{ConvUpdate, EfficientNetLite0, Lora, MbConv, conv_with_lora, load_efficientnet};
use ajuste::options::{AugmentOptions, DeepOptions, FinetuneMode, TrainOptions};
use ajuste::rng::Rng;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor, TensorData};

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    pollster::block_on(t.into_data_async())
        .unwrap()
        .try_to_vec::<f32>()
        .unwrap()
}

fn random(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn random_b(lora: &mut Lora, seed: u64, device: &Device) {
    let [c_out, rank] = lora.b.dims();
    let mut rng = Rng::new(seed);
    let v: Vec<f32> = (0..c_out * rank).map(|_| rng.next_f32() - 0.5).collect();
    lora.b = Param::from_tensor(Tensor::from_data(TensorData::new(v, [c_out, rank]), device));
}

fn tiny_conv(device: &Device) -> Conv2d {
    Conv2dConfig::new([6, 5], [1, 1]).init(device)
}

#[test]
fn lora_with_zero_b_is_the_frozen_conv_exactly() {
    let device = Device::flex();
    let conv = tiny_conv(&device);
    let lora = Lora::new(6, 5, 3, 3.0, &mut Rng::new(1), &device);
    let x = random([2, 6, 4, 4], 2, &device);
    assert_eq!(
        values(conv_with_lora(&conv, Some(&lora), x.clone())),
        values(conv.forward(x))
    );
}

#[test]
fn merged_weights_give_the_lora_forward() {
    let device = Device::flex();
    let conv = tiny_conv(&device);
    let mut lora = Lora::new(6, 5, 3, 6.0, &mut Rng::new(1), &device);
    random_b(&mut lora, 3, &device);
    let x = random([2, 6, 4, 4], 2, &device);
    // The definition, `conv(x) + s·B(A(x))`, against the merged conv and against `conv_with_lora` (which
    // merges for inference on the CPU).
    let adapted = values(conv.forward(x.clone()) + lora.forward(x.clone()));
    let plain = values(conv.forward(x.clone()));
    for (what, other) in [
        ("merged", values(lora.merge(&conv).forward(x.clone()))),
        ("conv_with_lora", values(conv_with_lora(&conv, Some(&lora), x))),
    ] {
        let max_diff = max_abs_diff(&adapted, &other);
        assert!(max_diff < 1e-5, "{what} differs by {max_diff}");
    }
    assert!(
        adapted.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-3),
        "the adapter changed nothing"
    );
}

/// A small MBConv (3×3 depthwise, expand 2, residual) with adapters on both 1×1 convs, B non-zero.
fn tiny_block(device: &Device) -> MbConv {
    let spec = BlockSpec {
        kernel: 3,
        stride: 1,
        expand: 2,
        cin: 4,
        cout: 4,
        size_in: 5,
    };
    let mut block = MbConv::new(&spec, device);
    // burn's init is not seeded: fixed weights keep the check away from a ReLU6 kink on every run.
    let mut seed = 20;
    for conv in [block.expand.as_mut().unwrap(), &mut block.dw, &mut block.project] {
        let [o, i, kh, kw] = conv.weight.dims();
        conv.weight = Param::from_tensor(random([o, i, kh, kw], seed, device).mul_scalar(0.5));
        conv.bias = Some(Param::from_tensor(random([1, 1, 1, o], seed + 1, device).reshape([o])));
        seed += 2;
    }
    let mut rng = Rng::new(5);
    let mut e = Lora::new(4, 8, 2, 2.0, &mut rng, device);
    let mut p = Lora::new(8, 4, 2, 2.0, &mut rng, device);
    random_b(&mut e, 6, device);
    random_b(&mut p, 7, device);
    block.expand_lora = Some(e);
    block.project_lora = Some(p);
    block
}

/// loss = Σ forward(x) ⊙ r, a scalar whose gradient reaches every parameter.
fn loss(block: &MbConv, x: Tensor<4>, r: Tensor<4>) -> Tensor<1> {
    (block.forward(x) * r).sum()
}

fn check_gradient(name: &str, analytic: &[f32], mut perturbed_loss: impl FnMut(usize, f32) -> f32) {
    let eps = 1e-3;
    for i in (0..analytic.len()).step_by((analytic.len() / 6).max(1)) {
        let numeric = (perturbed_loss(i, eps) - perturbed_loss(i, -eps)) / (2.0 * eps);
        let tol = 2e-2 * (1.0 + numeric.abs());
        assert!(
            (numeric - analytic[i]).abs() < tol,
            "{name}[{i}]: numeric {numeric} analytic {}",
            analytic[i]
        );
    }
}

fn with_value<const D: usize>(param: &Param<Tensor<D>>, i: usize, delta: f32) -> Param<Tensor<D>> {
    let t = param.val();
    let shape = t.shape();
    let mut v = values(t.clone());
    v[i] += delta;
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), &t.device()))
}

#[test]
fn lora_and_unfrozen_gradients_match_finite_differences() {
    let device = Device::flex();
    let block = tiny_block(&device);
    let x = random([2, 4, 5, 5], 8, &device);
    let r = random([2, 4, 5, 5], 9, &device);
    let trained = block.clone().train();
    let ad = device.clone().autodiff();
    let grads = loss(&trained, x.clone().autodiff(), r.clone().to_device(&ad)).backward();
    let grad = |p: &Param<Tensor<2>>| values(p.val().grad(&grads).expect("a gradient"));
    let grad4 = |p: &Param<Tensor<4>>| values(p.val().grad(&grads).expect("a gradient"));
    let value = |b: &MbConv| values(loss(b, x.clone(), r.clone()))[0];

    let e = trained.expand_lora.as_ref().unwrap();
    check_gradient("expand A", &grad(&e.a), |i, d| {
        let mut b = block.clone();
        b.expand_lora.as_mut().unwrap().a = with_value(&block.expand_lora.as_ref().unwrap().a, i, d);
        value(&b)
    });
    check_gradient("project B", &grad(&trained.project_lora.as_ref().unwrap().b), |i, d| {
        let mut b = block.clone();
        b.project_lora.as_mut().unwrap().b = with_value(&block.project_lora.as_ref().unwrap().b, i, d);
        value(&b)
    });
    // The unfrozen path: the depthwise and projection weights themselves.
    check_gradient("dw weight", &grad4(&trained.dw.weight), |i, d| {
        let mut b = block.clone();
        b.dw.weight = with_value(&block.dw.weight, i, d);
        value(&b)
    });
    check_gradient("project weight", &grad4(&trained.project.weight), |i, d| {
        let mut b = block.clone();
        b.project.weight = with_value(&block.project.weight, i, d);
        value(&b)
    });
}

#[test]
fn cut_activation_bytes_per_image() {
    // Input of block 8 (LoRA last 8): 80×14×14 f32; block 12 (last 4): 192×7×7; block 0: the stem's 32×112×112.
    assert_eq!(cut_bytes_per_image(8), 4 * 80 * 14 * 14);
    assert_eq!(cut_bytes_per_image(12), 4 * 192 * 7 * 7);
    assert_eq!(cut_bytes_per_image(0), 4 * 32 * 112 * 112);
}

/// Two classes a pretrained network tells apart easily: horizontal vs vertical stripes, random phase/period.
fn stripes(n_per_class: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
    let mut rng = Rng::new(11);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for _ in 0..n_per_class {
            let period = 8 + rng.below(24);
            let phase = rng.below(period);
            let mut im = vec![0u8; 224 * 224 * 3];
            for y in 0..224 {
                for x in 0..224 {
                    let t = if class == 0 { y } else { x };
                    let v = if (t + phase) % period < period / 2 { 230 } else { 30 };
                    im[(y * 224 + x) * 3..][..3].fill(v);
                }
            }
            images.push(im);
            labels.push(class);
        }
    }
    (images, labels)
}

fn model() -> EfficientNetLite0 {
    load_efficientnet(&std::fs::read(WEIGHTS).expect("repo weights"), &Device::flex()).unwrap()
}

fn data() -> TrainData {
    let (images, labels) = stripes(5);
    TrainData {
        images,
        keys: Vec::new(),
        labels,
        num_classes: 2,
        train: vec![0, 1, 2, 3, 5, 6, 7, 8],
        val: vec![4, 9],
    }
}

fn run(model: &EfficientNetLite0, options: TrainOptions) -> DeepTrainer {
    let mut trainer = DeepTrainer::new(model, data(), options, None).unwrap();
    while !trainer.is_done() {
        let report = pollster::block_on(trainer.step()).unwrap();
        assert_ne!(report.phase, Phase::Done);
    }
    trainer
}

fn lora_options(seed: u64) -> TrainOptions {
    TrainOptions {
        epochs: 4,
        batch_size: 4,
        learning_rate: 3e-3,
        seed,
        patience: 8,
        ..TrainOptions::default()
    }
    .with_mode(FinetuneMode::Lora {
        blocks: 1,
        rank: 4,
        alpha: 4.0,
    })
}

#[test]
fn training_lowers_the_loss_keeps_the_best_epoch_and_is_deterministic() {
    let model = model();
    let a = run(&model, lora_options(0));
    let h = a.history();
    assert_eq!(h.len(), 4);
    assert!(h[3].train_loss < h[0].train_loss, "train loss did not fall: {h:?}");
    assert_eq!(a.cache().len(), 10, "every image cached once");

    // The best epoch's network reproduces that epoch's validation loss.
    let best = a.best_metrics().unwrap().clone();
    assert_eq!(
        best.val_loss,
        h.iter().map(|m| m.val_loss).fold(f32::INFINITY, f32::min)
    );
    let net = a.best_model();
    let d = data();
    let refs: Vec<&[u8]> = d.val.iter().map(|&i| d.images[i].as_slice()).collect();
    let logits = values(net.forward(ajuste::model::embed::input_tensor(&refs, &Device::flex())));
    let labels: Vec<usize> = d.val.iter().map(|&i| d.labels[i]).collect();
    let loss = ajuste::head::metrics::cross_entropy(&logits, &labels, 2, 0.0, None);
    assert!(
        (loss - best.val_loss).abs() < 1e-4,
        "best model's val loss {loss} vs recorded {}",
        best.val_loss
    );

    // LoRA deltas: expand and project of block 15 and the head conv, with trained (non-zero) B.
    let delta = pollster::block_on(a.best_delta()).unwrap();
    let names: Vec<&str> = delta.convs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["blocks.15.expand.conv", "blocks.15.project.conv", "head.conv"]);
    match &delta.convs[2].update {
        ConvUpdate::Lora { a, b, rank, .. } => {
            assert_eq!((a.len(), b.len(), *rank), (4 * 320, 1280 * 4, 4));
            assert!(b.iter().any(|&v| v != 0.0), "B stayed zero");
        }
        other => panic!("expected a LoRA update, got {other:?}"),
    }

    // The frozen base convs did not move.
    let base_w = values(model.blocks[15].project.weight.val());
    assert_eq!(values(net.blocks[15].project.weight.val()), base_w);

    assert_eq!(run(&model, lora_options(0)).history(), h, "same seed, same run");
    assert_ne!(run(&model, lora_options(1)).history(), h, "another seed, another run");
}

#[test]
fn last_blocks_train_full_weights_and_stop_takes_effect() {
    let model = model();
    let options = TrainOptions {
        epochs: 2,
        batch_size: 4,
        patience: 8,
        deep: DeepOptions {
            cache_bytes: 3 * cut_bytes_per_image(15),
            ..Default::default()
        },
        ..TrainOptions::default()
    }
    .with_mode(FinetuneMode::LastBlocks { blocks: 1 });
    let mut trainer = DeepTrainer::new(&model, data(), options, None).unwrap();
    assert_eq!(trainer.cache().capacity(), 3);
    let before = pollster::block_on(trainer.best_delta()).unwrap();
    while trainer.history().is_empty() {
        pollster::block_on(trainer.step()).unwrap();
    }
    assert_eq!(trainer.cache().len(), 3, "the cache stays within its budget");
    let after = pollster::block_on(trainer.best_delta()).unwrap();
    let names: Vec<&str> = after.convs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "blocks.15.expand.conv",
            "blocks.15.dw.conv",
            "blocks.15.project.conv",
            "head.conv"
        ]
    );
    assert_ne!(before, after, "the unfrozen weights changed");
    trainer.request_stop();
    assert!(trainer.is_done());
    assert_eq!(pollster::block_on(trainer.step()).unwrap().phase, Phase::Done);
}

#[test]
fn augmentation_runs_per_training_image_view_and_caches_the_bank() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let model = model();
    // Augmented views transformed with `views` per image (0: a new one every epoch), over 3 epochs.
    let run = |views: usize| {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        // A seeded brightness shift, standing in for the real augmentation.
        let augment: ajuste::finetune::Augment = Box::new(move |pixels, rng| {
            counter.fetch_add(1, Ordering::Relaxed);
            let shift = rng.below(40) as u8;
            pixels.iter().map(|p| p.saturating_add(shift)).collect()
        });
        let options = TrainOptions {
            epochs: 3,
            deep: DeepOptions {
                augment: AugmentOptions {
                    views,
                    ..lora_options(3).deep.augment
                },
                ..lora_options(3).deep
            },
            ..lora_options(3)
        };
        let mut trainer = DeepTrainer::new(&model, data(), options, Some(augment)).unwrap();
        while !trainer.is_done() {
            pollster::block_on(trainer.step()).unwrap();
        }
        assert_eq!(trainer.history().len(), 3);
        (trainer.cache().len(), calls.load(Ordering::Relaxed))
    };
    assert_eq!(
        run(0),
        (2, 3 * 8),
        "no bank: only validation images cached, every training image transformed once per epoch"
    );
    assert_eq!(
        run(2),
        (2 + 2 * 8, 2 * 8),
        "a bank of 2: each view transformed once and cached"
    );
}

/// Pins a few LoRA steps' losses for the in-browser tests (CPU and WebGPU must reproduce them within 1e-3).
/// `AJUSTE_BLESS=1 cargo test --release --test finetune lora_steps` rewrites the fixture after a deliberate change.
#[test]
fn lora_steps_match_the_pinned_losses() {
    use common::lora_steps::{FIXTURE, lora_history, max_diff};
    let history = pollster::block_on(lora_history(&model()));
    assert!(
        history.len() == 3 && history.iter().flatten().all(|v| v.is_finite()),
        "{history:?}"
    );
    assert!(history[2][0] < history[0][0], "training lowered the loss: {history:?}");
    let path = format!("{}/{FIXTURE}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("AJUSTE_BLESS").is_some() {
        let json = serde_json::json!({
            "what": "train and validation loss per epoch of tests/common/lora_steps.rs, native flex CPU",
            "history": history,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
        // A blessed run compares the history with itself: it must not count as a pass (nor run under CI).
        panic!("{FIXTURE} rewritten (AJUSTE_BLESS): check its diff, then run again without AJUSTE_BLESS");
    }
    let pinned: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("the fixture")).unwrap();
    let pinned: Vec<[f32; 2]> = serde_json::from_value(pinned["history"].clone()).unwrap();
    let diff = max_diff(&history, &pinned);
    assert!(
        diff < 1e-4,
        "native losses moved by {diff} from the fixture: {history:?} vs {pinned:?}"
    );
}
