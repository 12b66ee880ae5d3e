//! Jobs in the deeper modes, driven through a `Host` as the training worker drives them: LoRA and last blocks
//! alone, Auto's two runs and its choice, progress with epochs and image rates, and a stop within one step.

mod common;

use ajuste::export::{ExportMetadata, FinetuneRecord};
use ajuste::model::{ConvUpdate, EfficientNetLite0, load_efficientnet};
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::train::job::{Job, run_job};
use ajuste::train::{EmbeddingCache, RunMode, Stage, TrainEvent, Trained};
use burn::tensor::Device;
use common::job_host::{TestHost, dataset};

fn run(model: &EfficientNetLite0, finetune: FinetuneChoice, epochs: usize, stop: bool) -> Vec<TrainEvent> {
    let device = Device::flex();
    let data = dataset();
    let options = TrainOptions {
        epochs,
        val_fraction: 0.34,
        batch_size: 2,
        finetune,
        ..TrainOptions::default()
    };
    let host = TestHost::new(move |p| stop && p.stage == Stage::FineTuning && p.done >= 1);
    let job = Job {
        model,
        device: &device,
        dataset: &data,
        options,
        batch_size: 3,
    };
    pollster::block_on(run_job(job, &mut EmbeddingCache::default(), &host));
    host.events.into_inner()
}

fn finished(events: &[TrainEvent]) -> &Trained {
    match events.last() {
        Some(TrainEvent::Finished(trained)) => trained,
        other => panic!("{other:?}"),
    }
}

fn epochs_of(events: &[TrainEvent], mode: RunMode) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, TrainEvent::Epoch { run, .. } if *run == mode))
        .count()
}

fn model() -> EfficientNetLite0 {
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    load_efficientnet(&weights, &Device::flex()).unwrap()
}

#[test]
fn lora_and_last_blocks_jobs_report_steps_and_keep_their_backbone_changes() {
    let model = model();
    let events = run(
        &model,
        FinetuneChoice::Lora {
            blocks: 2,
            rank: 4,
            alpha: 4.0,
        },
        2,
        false,
    );
    let trained = finished(&events);
    assert_eq!(trained.report.mode, RunMode::Lora);
    assert_eq!(
        (epochs_of(&events, RunMode::Lora), epochs_of(&events, RunMode::Head)),
        (2, 0)
    );
    assert_eq!(trained.report.history.len(), 2);
    assert_eq!(trained.report.runs.len(), 1);
    assert!(!trained.delta.convs.is_empty());
    assert!(
        trained
            .delta
            .convs
            .iter()
            .all(|c| matches!(c.update, ConvUpdate::Lora { rank: 4, .. }))
    );
    assert_eq!(trained.report.confusion.total(), trained.report.num_val);
    let mut matrix = ajuste::head::ConfusionMatrix::new(trained.report.confusion.k);
    for p in &trained.report.predictions {
        matrix.add(p.truth, p.predicted);
    }
    assert_eq!(
        matrix, trained.report.confusion,
        "the per-image predictions make the matrix"
    );
    // Four training images in batches of two: two steps per epoch, four in all, with epochs and image rates.
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Progress(p) if p.stage == Stage::FineTuning && p.done > 0 => Some(p),
            _ => None,
        })
        .collect();
    let last = steps.last().unwrap();
    assert_eq!((last.total, last.epochs, last.run), (4, 2, RunMode::Lora));
    assert!(steps.iter().any(|p| p.epoch == 2));
    assert!(last.images_per_second > 0.0 && last.seconds_left.is_some());
    let record = FinetuneRecord::from_report(&trained.report).unwrap();
    assert_eq!(
        (record.mode.as_str(), record.lora_rank, record.blocks),
        ("lora", Some(4), 2)
    );
    assert!(record.augmentation.is_some(), "augmentation is on by default");

    let events = run(&model, FinetuneChoice::LastBlocks { blocks: 1 }, 1, false);
    let trained = finished(&events);
    assert_eq!(trained.report.mode, RunMode::LastBlocks);
    assert!(
        trained
            .delta
            .convs
            .iter()
            .all(|c| matches!(c.update, ConvUpdate::Full { .. }))
    );
}

#[test]
fn auto_trains_both_runs_and_keeps_the_lower_validation_loss() {
    let model = model();
    let events = run(&model, FinetuneChoice::Auto, 2, false);
    let trained = finished(&events);
    assert_eq!(
        (epochs_of(&events, RunMode::Head), epochs_of(&events, RunMode::Lora)),
        (2, 2)
    );
    let report = &trained.report;
    assert_eq!(
        report.runs.iter().map(|r| r.mode).collect::<Vec<_>>(),
        [RunMode::Head, RunMode::Lora]
    );
    let [head, lora] = [&report.runs[0], &report.runs[1]].map(|r| r.best().unwrap().val_loss);
    let expected = if lora < head { RunMode::Lora } else { RunMode::Head };
    assert_eq!(report.mode, expected, "head {head}, LoRA {lora}");
    assert_eq!(trained.delta.convs.is_empty(), expected == RunMode::Head);
    let explanation = report.explanation.as_deref().unwrap();
    assert!(explanation.contains("validation loss"), "{explanation}");
    let record = FinetuneRecord::from_report(report).unwrap();
    assert_eq!(
        (record.requested.as_str(), record.mode.as_str()),
        ("auto", expected.name())
    );
    assert_eq!(record.runs.len(), 2);
    let meta = ExportMetadata::from_report(report);
    let config: serde_json::Value =
        serde_json::from_str(&ajuste::export::config_json_finetuned(&meta, &record)).unwrap();
    assert_eq!(config["finetune"]["runs"][1]["mode"], "lora");
    let augmentation = &config["finetune"]["augmentation"];
    assert_eq!(
        (
            &augmentation["strength"],
            &augmentation["horizontal_flip"],
            &augmentation["views"]
        ),
        (
            &serde_json::json!("medium"),
            &serde_json::json!(false),
            &serde_json::json!(8)
        ),
        "config.json records the augmentation: {augmentation}"
    );
    // The trained model survives the save across reloads, backbone changes included.
    let back: Trained = serde_json::from_str(&serde_json::to_string(trained).unwrap()).unwrap();
    assert_eq!(back.delta, trained.delta);
    // serde_json reads an f64 back within one ulp (no `float_roundtrip`): the timings are compared as numbers,
    // everything else exactly.
    let (t, u) = (&back.report.timings, &trained.report.timings);
    for (a, b) in [
        (t.embed_seconds, u.embed_seconds),
        (t.images_per_second, u.images_per_second),
        (t.train_seconds, u.train_seconds),
    ] {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "timing {a} read back as {b}");
    }
    let mut back_report = back.report.clone();
    back_report.timings = trained.report.timings.clone();
    // The deeper run's seconds likewise.
    for (a, b) in back_report.runs.iter_mut().zip(&trained.report.runs) {
        if let (Some(x), Some(y)) = (a.deep.as_mut(), b.deep.as_ref()) {
            assert!(
                (x.seconds - y.seconds).abs() <= 1e-9 * y.seconds.max(1.0),
                "{} read back as {}",
                y.seconds,
                x.seconds
            );
            x.seconds = y.seconds;
        }
    }
    assert_eq!(back_report, trained.report);
}

#[test]
fn a_stop_during_fine_tuning_takes_effect_before_the_next_step_and_auto_then_keeps_the_head() {
    let model = model();
    let events = run(
        &model,
        FinetuneChoice::Lora {
            blocks: 1,
            rank: 2,
            alpha: 2.0,
        },
        3,
        true,
    );
    // The stop came after the first step of the first epoch: no other step ran and nothing was trained.
    let steps = events
        .iter()
        .filter(|e| matches!(e, TrainEvent::Progress(p) if p.stage == Stage::FineTuning && p.done > 0))
        .count();
    assert_eq!(steps, 1);
    assert!(
        matches!(
            events.last(),
            Some(TrainEvent::Stopped {
                stage: Stage::FineTuning,
                done: 0,
                ..
            })
        ),
        "{:?}",
        events.last()
    );

    // Auto stopped in its LoRA run before an epoch ended: the head is kept, and the reason says so.
    let events = run(&model, FinetuneChoice::Auto, 3, true);
    let trained = finished(&events);
    assert_eq!(trained.report.mode, RunMode::Head);
    assert!(trained.delta.convs.is_empty());
    assert_eq!(trained.report.runs.len(), 2);
    assert!(trained.report.runs[1].history.is_empty());
    let explanation = trained.report.explanation.as_deref().unwrap();
    assert!(explanation.contains("nothing to compare"), "{explanation}");
}
