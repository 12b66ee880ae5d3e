//! The training pipeline as the app uses it: data and options in, epochs, a kept head and one report out.
//! Tiny synthetic features (three separable clusters), so it runs in milliseconds.

use ajuste::export::ExportMetadata;
use ajuste::options::TrainOptions;
use ajuste::train::pipeline::Timings;
use ajuste::train::{TrainData, TrainEvent, Trained, TrainingRun};

/// `per_class` points per class around a class centre in 8 dimensions, with a little deterministic noise.
fn clusters(per_class: usize) -> TrainData {
    let (k, dim) = (3, 8);
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for class in 0..k {
        for i in 0..per_class {
            for d in 0..dim {
                let centre = if d % k == class { 2.0 } else { 0.0 };
                let noise = (((class * 31 + i * 7 + d * 3) % 11) as f32 - 5.0) * 0.05;
                features.push(centre + noise);
            }
            labels.push(class);
        }
    }
    TrainData {
        features,
        dim,
        labels,
        class_names: vec!["a".into(), "b".into(), "c".into()],
        keys: (0..k * per_class).map(|i| i as u64 + 100).collect(),
    }
}

fn run(data: TrainData, options: TrainOptions) -> Trained {
    let mut run = TrainingRun::new(data, options).unwrap();
    while run.step().is_some() {}
    run.finish(Timings::default())
}

#[test]
fn trains_and_reports_what_it_kept() {
    let options = TrainOptions {
        epochs: 30,
        learning_rate: 0.05,
        ..TrainOptions::default()
    };
    let trained = run(clusters(10), options.clone());
    let r = &trained.report;
    assert_eq!(r.labels, ["a", "b", "c"]);
    assert_eq!(r.options, options);
    assert_eq!((r.num_train, r.num_val), (24, 6), "2 of 10 per class held out");
    assert!(!r.history.is_empty() && r.history.len() <= 30);
    assert_eq!(r.best, r.history[r.best.epoch], "best is one of the epochs");
    let lowest = r.history.iter().map(|m| m.val_loss).fold(f32::INFINITY, f32::min);
    assert_eq!(r.best.val_loss, lowest, "the kept epoch has the lowest validation loss");
    assert_eq!(r.confusion.k, 3);
    assert_eq!(
        r.confusion.total(),
        r.num_val,
        "the matrix counts the validation images"
    );
    assert_eq!(r.per_class_accuracy, r.confusion.per_class_accuracy());
    // One prediction per counted image, agreeing with the matrix, each naming a distinct image.
    assert_eq!(r.predictions.len(), r.num_val);
    let mut from_predictions = ajuste::head::ConfusionMatrix::new(3);
    for p in &r.predictions {
        from_predictions.add(p.truth, p.predicted);
        assert_eq!(
            p.truth,
            (p.key - 100) as usize / 10,
            "the key names an image of the true class"
        );
        assert!(p.confidence > 1.0 / 3.0 && p.confidence <= 1.0, "{}", p.confidence);
    }
    assert_eq!(from_predictions, r.confusion);
    let keys: std::collections::HashSet<u64> = r.predictions.iter().map(|p| p.key).collect();
    assert_eq!(keys.len(), r.num_val);
    assert!(r.val_accuracy >= 0.99, "separable clusters: {}", r.val_accuracy);
    assert!(
        (r.val_loss - r.best.val_loss).abs() < 1e-5,
        "{} vs {}",
        r.val_loss,
        r.best.val_loss
    );
    assert!(!r.stop_reason.is_empty());
    let meta = ExportMetadata::from_report(r);
    assert_eq!((meta.best_epoch, meta.epochs_run), (r.best.epoch, r.history.len()));
    assert_eq!(meta.per_class_val_accuracy, r.per_class_accuracy);
}

#[test]
fn same_seed_same_result_and_a_stop_keeps_the_best_so_far() {
    let options = TrainOptions {
        epochs: 8,
        ..TrainOptions::default()
    };
    let a = run(clusters(6), options.clone());
    let b = run(clusters(6), options.clone());
    assert_eq!(a.report, b.report);
    assert_eq!(a.head.tensors(), b.head.tensors());

    let mut stopped = TrainingRun::new(clusters(6), options).unwrap();
    stopped.step().unwrap();
    stopped.step().unwrap();
    stopped.stop();
    assert!(stopped.step().is_none(), "no epoch after a stop");
    let report = stopped.finish(Timings::default()).report;
    assert_eq!(report.history.len(), 2);
    assert!(report.stop_reason.contains("stopped by you"), "{}", report.stop_reason);
}

#[test]
fn refuses_bad_input_with_a_reason() {
    let bad = TrainOptions {
        epochs: 0,
        ..TrainOptions::default()
    };
    assert!(TrainingRun::new(clusters(4), bad).err().unwrap().contains("epochs"));
    let mut one_class = clusters(4);
    one_class.class_names.truncate(1);
    assert!(TrainingRun::new(one_class, TrainOptions::default()).is_err());
    let mut keyless = clusters(4);
    keyless.keys.pop();
    assert!(
        TrainingRun::new(keyless, TrainOptions::default())
            .err()
            .unwrap()
            .contains("keys")
    );
}

#[test]
fn a_finished_run_crosses_a_message_boundary_intact() {
    let trained = run(
        clusters(4),
        TrainOptions {
            epochs: 3,
            ..TrainOptions::default()
        },
    );
    let json = serde_json::to_string(&TrainEvent::Finished(Box::new(trained.clone()))).unwrap();
    let TrainEvent::Finished(back) = serde_json::from_str(&json).unwrap() else {
        panic!("not a Finished event: {json:.200}");
    };
    assert_eq!(back.report, trained.report);
    assert_eq!(back.head.tensors(), trained.head.tensors());
}
