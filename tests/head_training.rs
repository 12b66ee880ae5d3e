//! Head training on the reference embeddings (tests/fixtures/reference_embeddings.safetensors) with that file's
//! split, against the PyTorch reference numbers in tests/fixtures/README.md.

use ajuste::head::{Head, Trainer};
use ajuste::model::TensorFile;
use ajuste::options::{HeadOptions, TrainOptions};

const EMBEDDINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reference_embeddings.safetensors"
);

struct Set {
    features: Vec<f32>,
    labels: Vec<usize>,
    train: Vec<usize>,
    val: Vec<usize>,
    k: usize,
}

fn load(name: &str) -> Set {
    let bytes = std::fs::read(EMBEDDINGS).expect("reference embeddings");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ints = |t: &str| -> Vec<usize> {
        let view = st.tensor(&format!("{name}.{t}")).unwrap();
        view.data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect()
    };
    let file = TensorFile::parse(&bytes).unwrap();
    let (shape, features) = file.f32_any_shape(&format!("{name}.embeddings")).unwrap();
    assert_eq!(shape[1], 1280);
    let labels = ints("labels");
    let k = labels.iter().max().unwrap() + 1;
    Set {
        features,
        labels,
        train: ints("train_idx"),
        val: ints("val_idx"),
        k,
    }
}

fn train(set: &Set, options: TrainOptions) -> Trainer {
    let mut t = Trainer::new(
        set.features.clone(),
        1280,
        set.labels.clone(),
        set.train.clone(),
        set.val.clone(),
        set.k,
        options,
    )
    .unwrap();
    while !t.is_done() {
        t.step_epoch();
    }
    t
}

fn full_run() -> TrainOptions {
    TrainOptions {
        patience: 0,
        ..TrainOptions::default()
    }
}

#[test]
fn gcompris5_matches_the_pytorch_reference() {
    let t = train(&load("gcompris5"), full_run());
    let h = t.history();
    assert_eq!(h.len(), 50);
    let val_loss: Vec<f32> = h.iter().step_by(5).map(|m| m.val_loss).collect();
    println!("val loss every 5 epochs: {val_loss:?}, final {:?}", h.last().unwrap());
    let last = h.last().unwrap();
    // Reference: 0.935 (43/46) and a final validation loss of 0.177.
    assert!(
        last.val_accuracy >= 0.915,
        "val accuracy {} is not within 2 points of 0.935",
        last.val_accuracy
    );
    assert!(
        h[0].val_loss > 3.0 * last.val_loss,
        "validation loss must fall: {} → {}",
        h[0].val_loss,
        last.val_loss
    );
    assert!(
        (last.val_loss - 0.177).abs() < 0.05,
        "final val loss {} vs reference 0.177",
        last.val_loss
    );
    // Falling, not just lower at the end: each 10-epoch block ends lower than the one before.
    for w in h.chunks(10).collect::<Vec<_>>().windows(2) {
        assert!(w[1].last().unwrap().val_loss < w[0].last().unwrap().val_loss);
    }
}

#[test]
fn gcompris3_reaches_full_accuracy() {
    let t = train(&load("gcompris3"), full_run());
    let last = t.history().last().unwrap();
    assert!(last.val_accuracy >= 0.98, "{last:?}");
    assert!(
        (last.val_loss - 0.080).abs() < 0.04,
        "final val loss {} vs reference 0.080",
        last.val_loss
    );
}

#[test]
fn defaults_with_early_stopping_keep_the_best_head() {
    let t = train(&load("gcompris5"), TrainOptions::default());
    let (_, best) = t.best();
    let min = t.history().iter().map(|m| m.val_loss).fold(f32::INFINITY, f32::min);
    assert_eq!(
        best.val_loss, min,
        "the kept head is the one with the lowest validation loss"
    );
    assert!(best.val_accuracy >= 0.9, "{best:?}");
    assert!(!t.stop_reason().is_empty());
}

#[test]
fn same_seed_same_history_other_seed_differs() {
    let set = load("gcompris3");
    let opts = TrainOptions {
        epochs: 5,
        ..full_run()
    };
    let a = train(&set, opts.clone());
    let b = train(&set, opts.clone());
    let c = train(&set, TrainOptions { seed: 1, ..opts });
    assert_eq!(a.history(), b.history());
    assert_ne!(a.history(), c.history());
}

#[test]
fn mlp_head_label_smoothing_and_adamw_learn() {
    let set = load("gcompris5");
    for opts in [
        TrainOptions {
            head: HeadOptions {
                hidden_units: 128,
                dropout: 0.3,
                ..Default::default()
            },
            ..full_run()
        },
        TrainOptions {
            label_smoothing: 0.1,
            ..full_run()
        },
        TrainOptions {
            head: HeadOptions {
                decoupled_weight_decay: true,
                weight_decay: 0.01,
                ..Default::default()
            },
            ..full_run()
        },
    ] {
        let t = train(&set, opts.clone());
        let last = t.history().last().unwrap();
        assert!(last.val_accuracy >= 0.85, "{opts:?}: {last:?}");
        assert!(last.val_loss < t.history()[0].val_loss, "{opts:?}");
    }
}

#[test]
fn stop_request_ends_training_and_keeps_the_best_head() {
    let set = load("gcompris3");
    let mut t = Trainer::new(
        set.features.clone(),
        1280,
        set.labels.clone(),
        set.train.clone(),
        set.val.clone(),
        set.k,
        full_run(),
    )
    .unwrap();
    for _ in 0..3 {
        t.step_epoch();
    }
    t.request_stop();
    assert!(t.is_done());
    assert_eq!(t.history().len(), 3);
    assert!(t.stop_reason().contains("stopped by you"));
    let (head, best) = t.best();
    assert!(best.epoch < 3);
    // The kept head reproduces its recorded accuracy.
    let x: Vec<f32> = set
        .val
        .iter()
        .flat_map(|&i| set.features[i * 1280..(i + 1) * 1280].iter().copied())
        .collect();
    let hits = head
        .predict(&x, set.val.len())
        .iter()
        .zip(&set.val)
        .filter(|(p, i)| **p == set.labels[**i])
        .count();
    assert!((hits as f32 / set.val.len() as f32 - best.val_accuracy).abs() < 1e-6);
}

#[test]
fn head_tensors_round_trip() {
    let set = load("gcompris3");
    let t = train(
        &set,
        TrainOptions {
            epochs: 2,
            head: HeadOptions {
                hidden_units: 16,
                ..Default::default()
            },
            ..full_run()
        },
    );
    let (head, _) = t.best();
    let names: Vec<_> = head.tensors().iter().map(|t| t.name.clone()).collect();
    assert_eq!(
        names,
        [
            "classifier.0.weight",
            "classifier.0.bias",
            "classifier.3.weight",
            "classifier.3.bias"
        ]
    );
    let back = Head::from_tensors(&head.tensors()).unwrap();
    assert_eq!(
        back.forward(&set.features[..1280 * 3], 3),
        head.forward(&set.features[..1280 * 3], 3)
    );
    assert!(Head::from_tensors(&head.tensors()[1..]).is_err());
}

#[test]
fn invalid_options_are_rejected_with_a_message() {
    for bad in [
        TrainOptions {
            epochs: 0,
            ..TrainOptions::default()
        },
        TrainOptions {
            learning_rate: f32::NAN,
            ..TrainOptions::default()
        },
        TrainOptions {
            val_fraction: 0.95,
            ..TrainOptions::default()
        },
        TrainOptions {
            label_smoothing: 0.7,
            ..TrainOptions::default()
        },
        TrainOptions {
            batch_size: 0,
            ..TrainOptions::default()
        },
    ] {
        let message = bad.validate().unwrap_err();
        assert!(message.contains("must be"), "{message}");
    }
    assert!(TrainOptions::default().validate().is_ok());
}
