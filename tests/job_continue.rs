//! Continuing a kept model (issue 10: *Open model*, then train it further): the run starts from the model's
//! head, with the dataset's classes in any order; a model with a fine-tuned backbone is embedded on that
//! backbone and its features are not mixed with the shipped backbone's; other classes or a deeper mode are
//! refused with the reason.

mod common;

use ajuste::model::{BackboneDelta, ConvDelta, ConvUpdate, EMBEDDING_DIM, load_efficientnet, read_backbone};
use ajuste::options::{FinetuneChoice, HeadOptions, TrainOptions};
use ajuste::predict::exported_model;
use ajuste::train::job::{Job, continue_job, run_job};
use ajuste::train::{EmbeddingCache, RunMode, TrainEvent, Trained};
use burn::tensor::Device;
use common::job_host::{TestHost, dataset};

const WEIGHTS: &str = "public/models/efficientnet_lite0.safetensors";

fn finished(host: TestHost) -> Trained {
    match host.events.into_inner().pop() {
        Some(TrainEvent::Finished(trained)) => *trained,
        other => panic!("{other:?}"),
    }
}

fn failed(host: TestHost) -> String {
    match host.events.into_inner().pop() {
        Some(TrainEvent::Failed(why)) => why,
        other => panic!("{other:?}"),
    }
}

/// Every image trained on (no validation set) and a learning rate too small to move anything: the first
/// epoch's training loss is the loss of the head the run started from.
fn frozen() -> TrainOptions {
    TrainOptions {
        epochs: 1,
        val_fraction: 0.0,
        learning_rate: 1e-12,
        finetune: FinetuneChoice::Head,
        ..TrainOptions::default()
    }
}

#[test]
fn a_kept_model_is_continued_from_its_head() {
    let device = Device::flex();
    let weights = std::fs::read(WEIGHTS).unwrap();
    let model = load_efficientnet(&weights, &device).unwrap();
    let data = dataset();
    let mut cache = EmbeddingCache::default();
    let job = |dataset, options| Job {
        model: &model,
        device: &device,
        dataset,
        options,
        batch_size: 3,
    };
    let trained_options = TrainOptions {
        epochs: 8,
        val_fraction: 0.0,
        head: HeadOptions {
            hidden_units: 16,
            ..Default::default()
        },
        finetune: FinetuneChoice::Head,
        ..TrainOptions::default()
    };
    let host = TestHost::never_stopping();
    pollster::block_on(run_job(job(&data, trained_options), &mut cache, &host));
    let kept = finished(host);
    let kept_loss = kept.report.history.last().unwrap().train_loss;

    // A fresh head starts near ln 2; the continued one where the kept one ended (its hidden layer too).
    let host = TestHost::never_stopping();
    pollster::block_on(run_job(job(&data, frozen()), &mut cache, &host));
    let fresh_loss = finished(host).report.history[0].train_loss;
    let host = TestHost::never_stopping();
    pollster::block_on(continue_job(job(&data, frozen()), &kept, &mut cache, &host));
    let continued = finished(host);
    let continued_loss = continued.report.history[0].train_loss;
    assert!(
        (continued_loss - kept_loss).abs() < 1e-4,
        "{continued_loss} vs {kept_loss}"
    );
    assert!(
        continued_loss < fresh_loss - 0.05,
        "{continued_loss} vs fresh {fresh_loss}"
    );
    assert_eq!(
        continued.report.options.head.hidden_units, 16,
        "the kept head's architecture"
    );
    assert!(continued.report.explanation.unwrap().contains("Continued"));

    // The classes in the other order: the same model, its outputs reordered.
    let mut reversed = data.clone();
    reversed.classes.reverse();
    let host = TestHost::never_stopping();
    pollster::block_on(continue_job(job(&reversed, frozen()), &kept, &mut cache, &host));
    let swapped = finished(host);
    assert_eq!(swapped.report.labels, ["blue", "red"]);
    let swapped_loss = swapped.report.history[0].train_loss;
    assert!((swapped_loss - kept_loss).abs() < 1e-4, "{swapped_loss} vs {kept_loss}");

    // Other classes, or a deeper mode: refused, saying why.
    let mut renamed = data.clone();
    renamed.classes[1].name = "green".into();
    let host = TestHost::never_stopping();
    pollster::block_on(continue_job(job(&renamed, frozen()), &kept, &mut cache, &host));
    let why = failed(host);
    assert!(
        why.contains("missing here: blue") && why.contains("new here: green"),
        "{why}"
    );
    let lora = TrainOptions {
        finetune: FinetuneChoice::Lora {
            blocks: 2,
            rank: 4,
            alpha: 4.0,
        },
        ..frozen()
    };
    let host = TestHost::never_stopping();
    pollster::block_on(continue_job(job(&data, lora), &kept, &mut cache, &host));
    assert!(failed(host).contains("Head only"));
}

#[test]
fn a_fine_tuned_backbone_is_embedded_on_its_own() {
    let device = Device::flex();
    let weights = std::fs::read(WEIGHTS).unwrap();
    let data = dataset();
    let shipped = load_efficientnet(&weights, &device).unwrap();
    let mut cache = EmbeddingCache::default();
    let host = TestHost::never_stopping();
    let options = TrainOptions {
        epochs: 3,
        finetune: FinetuneChoice::Head,
        ..TrainOptions::default()
    };
    let job = Job {
        model: &shipped,
        device: &device,
        dataset: &data,
        options: options.clone(),
        batch_size: 3,
    };
    pollster::block_on(run_job(job, &mut cache, &host));
    let mut kept = finished(host);
    // As if opened from a file whose last conv was retrained: its folded weights scaled.
    let head = read_backbone(&weights).unwrap().head;
    kept.delta = BackboneDelta {
        convs: vec![ConvDelta {
            name: "head.conv".into(),
            shape: [EMBEDDING_DIM, 320, 1, 1],
            update: ConvUpdate::Full {
                weight: head.weight.iter().map(|w| w * 0.5).collect(),
                bias: head.bias,
            },
        }],
    };
    kept.report.mode = RunMode::LastBlocks;
    let own = load_efficientnet(&exported_model(&weights, &kept).unwrap(), &device).unwrap();
    let cached = cache.len();
    let host = TestHost::never_stopping();
    let job = Job {
        model: &own,
        device: &device,
        dataset: &data,
        options,
        batch_size: 3,
    };
    pollster::block_on(continue_job(job, &kept, &mut cache, &host));
    let continued = finished(host);
    assert_eq!(cache.len(), cached, "the shipped backbone's cache is left alone");
    assert_eq!(
        continued.delta, kept.delta,
        "the backbone it was trained on is the one exported"
    );
    assert_eq!(continued.report.mode, RunMode::LastBlocks);
    // The export is that backbone with the new head: it loads and has the classes.
    let exported = load_efficientnet(&exported_model(&weights, &continued).unwrap(), &device).unwrap();
    assert_eq!(exported.num_classes(), 2);
}
