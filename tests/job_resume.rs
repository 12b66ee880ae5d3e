//! A deeper job resumed from a checkpoint its host received, as the page resumes after a reload: the epochs done
//! are reported again (the charts), the next ones and the kept model are the uninterrupted job's, and a
//! checkpoint does not resume on other images.

mod common;

use ajuste::data::Dataset;
use ajuste::head::EpochMetrics;
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::train::job::{Job, resume_job, run_job};
use ajuste::train::{EmbeddingCache, TrainEvent, Trained};
use burn::tensor::Device;
use common::job_host::{TestHost, dataset};

fn options() -> TrainOptions {
    TrainOptions {
        epochs: 3,
        val_fraction: 0.34,
        batch_size: 2,
        patience: 0,
        finetune: FinetuneChoice::Lora {
            blocks: 1,
            rank: 4,
            alpha: 4.0,
        },
        ..TrainOptions::default()
    }
}

fn job<'a>(model: &'a EfficientNetLite0, device: &'a Device, dataset: &'a Dataset) -> Job<'a> {
    Job {
        model,
        device,
        dataset,
        options: options(),
        batch_size: 3,
    }
}

fn epochs(events: &[TrainEvent]) -> Vec<EpochMetrics> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch { metrics, .. } => Some(metrics.clone()),
            _ => None,
        })
        .collect()
}

fn finished(events: &[TrainEvent]) -> &Trained {
    match events.last() {
        Some(TrainEvent::Finished(trained)) => trained,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_resumed_lora_job_continues_exactly_and_refuses_other_images() {
    let device = Device::flex();
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    let model = load_efficientnet(&weights, &device).unwrap();
    let data = dataset();
    let job = |data| job(&model, &device, data);

    let host = TestHost::keeping_checkpoints();
    pollster::block_on(run_job(job(&data), &mut EmbeddingCache::default(), &host));
    let whole = host.events.into_inner();
    let checkpoints = host.checkpoints.unwrap().into_inner();
    let done: Vec<usize> = checkpoints.iter().map(|(n, _)| *n).collect();
    assert_eq!(done, [1, 2], "a checkpoint after every epoch but the last");

    let resumed = TestHost::never_stopping();
    pollster::block_on(resume_job(job(&data), &checkpoints[0].1, &resumed));
    let resumed = resumed.events.into_inner();
    assert_eq!(
        epochs(&resumed),
        epochs(&whole),
        "epoch 1 reported again, then the same epochs 2 and 3"
    );
    let (a, b) = (finished(&whole), finished(&resumed));
    assert_eq!((&a.head, &a.delta), (&b.head, &b.delta), "the same kept model");
    assert_eq!(a.report.history, b.report.history);

    let mut other = dataset();
    other.classes.swap(0, 1);
    let refused = TestHost::never_stopping();
    pollster::block_on(resume_job(job(&other), &checkpoints[0].1, &refused));
    match refused.events.into_inner().last() {
        Some(TrainEvent::Failed(e)) => assert!(e.contains("cannot resume") && e.contains("images changed"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// Auto, the default: interrupted in its LoRA run, it resumes there with its head run kept (not trained again),
/// both runs on the charts and in the report, and the same choice and kept model as without the interruption.
#[test]
fn a_resumed_auto_job_keeps_its_head_run_and_finishes_as_if_uninterrupted() {
    let device = Device::flex();
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    let model = load_efficientnet(&weights, &device).unwrap();
    let data = dataset();
    let auto = || Job {
        options: TrainOptions {
            finetune: FinetuneChoice::Auto,
            epochs: 2,
            ..options()
        },
        ..job(&model, &device, &data)
    };

    let host = TestHost::keeping_checkpoints();
    pollster::block_on(run_job(auto(), &mut EmbeddingCache::default(), &host));
    let whole = host.events.into_inner();
    let checkpoints = host.checkpoints.unwrap().into_inner();
    assert_eq!(checkpoints.len(), 1, "a checkpoint after the LoRA run's first epoch");

    let resumed = TestHost::never_stopping();
    pollster::block_on(resume_job(auto(), &checkpoints[0].1, &resumed));
    let resumed = resumed.events.into_inner();
    let runs = |events: &[TrainEvent]| {
        events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Epoch { run, metrics } => Some((*run, metrics.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        runs(&resumed),
        runs(&whole),
        "the head run's epochs, then LoRA's, as uninterrupted"
    );
    assert!(
        !resumed
            .iter()
            .any(|e| matches!(e, TrainEvent::Progress(p) if p.stage == ajuste::train::Stage::Embedding)),
        "the head run is not trained again"
    );
    let (a, b) = (finished(&whole), finished(&resumed));
    assert_eq!((&a.head, &a.delta), (&b.head, &b.delta), "the same kept model");
    // Both runs in the report, the same but for the wall-clock seconds.
    let untimed = |runs: &[ajuste::train::RunHistory]| {
        let mut runs = runs.to_vec();
        runs.iter_mut()
            .flat_map(|r| r.deep.as_mut())
            .for_each(|d| d.seconds = 0.0);
        runs
    };
    assert_eq!(
        untimed(&a.report.runs),
        untimed(&b.report.runs),
        "both runs in the report"
    );
    assert_eq!(
        a.report.explanation, b.report.explanation,
        "the same choice, for the same reason"
    );

    // A single run's checkpoint is no Auto checkpoint, and the other way round.
    let refused = TestHost::never_stopping();
    pollster::block_on(resume_job(auto(), b"not a checkpoint", &refused));
    match refused.events.into_inner().last() {
        Some(TrainEvent::Failed(e)) => assert!(e.contains("not an Auto training"), "{e}"),
        other => panic!("{other:?}"),
    }
}
