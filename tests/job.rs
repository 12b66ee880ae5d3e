//! A whole training job as the page runs it (embed with the shipped backbone, train the head), driven
//! through a `Host`, as the training worker runs it: the events, the cache reuse and a stop within one step.

mod common;

use ajuste::model::load_efficientnet;
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::train::job::{Job, run_job};
use ajuste::train::{EmbeddingCache, Stage, TrainEvent};
use burn::tensor::Device;
use common::job_host::{TestHost, dataset};

#[test]
fn a_job_embeds_trains_reuses_the_cache_and_stops_within_a_step() {
    let device = Device::flex();
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    let model = load_efficientnet(&weights, &device).unwrap();
    let data = dataset();
    let options = TrainOptions {
        epochs: 4,
        val_fraction: 0.34,
        finetune: FinetuneChoice::Head,
        ..TrainOptions::default()
    };
    let job = || Job {
        model: &model,
        device: &device,
        dataset: &data,
        options: options.clone(),
        batch_size: 2,
    };

    // Stopped once the first batch is embedded: the next step does not start, and that batch stays cached.
    let mut cache = EmbeddingCache::default();
    let host = TestHost::new(|p| p.stage == Stage::Embedding && p.done >= 1);
    pollster::block_on(run_job(job(), &mut cache, &host));
    let events = host.events.into_inner();
    assert!(
        matches!(
            events.last(),
            Some(TrainEvent::Stopped {
                stage: Stage::Embedding,
                done: 2,
                total: 6
            })
        ),
        "{:?}",
        events.last()
    );
    assert_eq!(cache.len(), 2);

    // Resumed: only the other four are embedded, then four epochs and the report.
    let host = TestHost::never_stopping();
    pollster::block_on(run_job(job(), &mut cache, &host));
    let events = host.events.into_inner();
    let TrainEvent::Progress(first) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!((first.stage, first.total), (Stage::Embedding, 4));
    let epochs = events.iter().filter(|e| matches!(e, TrainEvent::Epoch { .. })).count();
    let Some(TrainEvent::Finished(trained)) = events.last() else {
        panic!("{:?}", events.last())
    };
    assert_eq!(epochs, trained.report.history.len());
    assert_eq!(trained.report.labels, ["red", "blue"]);
    assert_eq!(trained.report.num_train + trained.report.num_val, 6);
    assert_eq!(cache.len(), 6);
    // The backbone's time is part of the feature time, and not none of it (four images through the network).
    let t = &trained.report.timings;
    assert!(
        t.backbone_seconds > 0.0 && t.backbone_seconds <= t.embed_seconds,
        "{t:?}"
    );

    // Everything cached: no image is embedded again.
    let host = TestHost::never_stopping();
    pollster::block_on(run_job(job(), &mut cache, &host));
    let events = host.events.into_inner();
    let TrainEvent::Progress(first) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(first.total, 0);
    assert!(matches!(events.last(), Some(TrainEvent::Finished(_))));
}
