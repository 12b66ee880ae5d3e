//! A job on a dataset whose pixels are kept out of memory (as the page keeps them, in storage): the host reads
//! them back a batch at a time, is handed every new feature row to keep, and the result is the same model as
//! with every image in memory.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;

use ajuste::data::{Dataset, Sample};
use ajuste::model::load_efficientnet;
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::train::job::{Host, Job, run_job};
use ajuste::train::{EmbeddingCache, TrainEvent};
use burn::tensor::Device;
use common::job_host::{TestHost, dataset};

/// A `TestHost` that serves pixels from a map (the "storage") and records what it was asked and handed.
struct StoringHost {
    inner: TestHost,
    stored: HashMap<u64, Vec<u8>>,
    asked: RefCell<Vec<usize>>,
    kept: RefCell<Vec<u64>>,
}

impl StoringHost {
    /// A host whose storage holds every image of `full`.
    fn of(full: &Dataset) -> Self {
        Self {
            inner: TestHost::never_stopping(),
            stored: full
                .classes
                .iter()
                .flat_map(|c| &c.samples)
                .map(|s| (s.key(), s.pixels.clone()))
                .collect(),
            asked: RefCell::default(),
            kept: RefCell::default(),
        }
    }
}

impl Host for StoringHost {
    fn now_seconds(&self) -> f64 {
        self.inner.now_seconds()
    }
    async fn pause(&self) {}
    fn stop_requested(&self) -> bool {
        self.inner.stop_requested()
    }
    fn emit(&self, event: TrainEvent) {
        self.inner.emit(event)
    }
    async fn load_pixels(&self, keys: &[u64]) -> Result<Vec<Vec<u8>>, String> {
        self.asked.borrow_mut().push(keys.len());
        keys.iter()
            .map(|k| self.stored.get(k).cloned().ok_or_else(|| format!("no image {k:x}")))
            .collect()
    }
    async fn embedded(&self, keys: &[u64], rows: &[f32]) {
        assert_eq!(rows.len(), keys.len() * 1280);
        self.kept.borrow_mut().extend_from_slice(keys);
    }
}

fn kept_elsewhere(full: &Dataset, from: usize) -> Dataset {
    let mut light = full.clone();
    for class in &mut light.classes {
        for s in &mut class.samples[from..] {
            *s = Sample::stored(s.name.clone(), s.key());
        }
    }
    light
}

#[test]
fn pixels_kept_elsewhere_are_read_back_in_batches_and_features_handed_over() {
    let device = Device::flex();
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    let model = load_efficientnet(&weights, &device).unwrap();
    let full = dataset();
    let light = kept_elsewhere(&full, 1);
    let options = TrainOptions {
        epochs: 3,
        val_fraction: 0.34,
        finetune: FinetuneChoice::Head,
        ..TrainOptions::default()
    };
    let host = StoringHost::of(&full);
    let job = |data| Job {
        model: &model,
        device: &device,
        dataset: data,
        options: options.clone(),
        batch_size: 2,
    };
    let mut cache = EmbeddingCache::default();
    pollster::block_on(run_job(job(&light), &mut cache, &host));
    let events = host.inner.events.take();
    let Some(TrainEvent::Finished(from_storage)) = events.last() else {
        panic!("{:?}", events.last())
    };
    // 4 of the 6 images are kept elsewhere; batches of 2 mix the two kinds.
    assert_eq!(host.asked.borrow().iter().sum::<usize>(), 4);
    assert!(host.asked.borrow().iter().all(|&n| n <= 2), "{:?}", host.asked.borrow());
    let mut kept = host.kept.take();
    kept.sort();
    let mut keys: Vec<u64> = full.classes.iter().flat_map(|c| &c.samples).map(|s| s.key()).collect();
    keys.sort();
    assert_eq!(kept, keys, "every new feature row is handed to the host");

    // The same as with every image in memory.
    let in_memory = TestHost::never_stopping();
    pollster::block_on(run_job(job(&full), &mut EmbeddingCache::default(), &in_memory));
    let Some(TrainEvent::Finished(reference)) = in_memory.events.take().pop() else {
        panic!("the in-memory run did not finish")
    };
    assert_eq!(from_storage.report.history, reference.report.history);

    // A host that cannot read images back: a clear failure, not a panic.
    let plain = TestHost::never_stopping();
    pollster::block_on(run_job(job(&light), &mut EmbeddingCache::default(), &plain));
    let Some(TrainEvent::Failed(why)) = plain.events.take().pop() else {
        panic!("expected a failure")
    };
    assert!(why.contains("not in memory"), "{why}");
}

#[test]
fn a_deeper_job_reads_its_images_a_batch_at_a_time_and_ends_within_its_time_budget() {
    let device = Device::flex();
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    let model = load_efficientnet(&weights, &device).unwrap();
    let full = dataset();
    let light = kept_elsewhere(&full, 0);
    let host = || StoringHost::of(&full);
    let mut options = TrainOptions {
        epochs: 2,
        val_fraction: 0.34,
        batch_size: 2,
        patience: 0,
        finetune: FinetuneChoice::Lora {
            blocks: 2,
            rank: 4,
            alpha: 4.0,
        },
        ..TrainOptions::default()
    };
    let finish = |data: &Dataset, options: &TrainOptions, host: &StoringHost| {
        let job = Job {
            model: &model,
            device: &device,
            dataset: data,
            options: options.clone(),
            batch_size: 2,
        };
        pollster::block_on(run_job(job, &mut EmbeddingCache::default(), host));
        match host.inner.events.take().pop() {
            Some(TrainEvent::Finished(trained)) => trained,
            other => panic!("{other:?}"),
        }
    };
    let storing = host();
    let streamed = finish(&light, &options, &storing);
    let reference = finish(&full, &options, &host());
    assert_eq!(
        streamed.report.history, reference.report.history,
        "the same model as in memory"
    );
    assert_eq!(streamed.report.val_loss, reference.report.val_loss);
    let asked = storing.asked.take();
    assert!(
        !asked.is_empty() && asked.iter().all(|&n| n <= 2),
        "a batch at a time: {asked:?}"
    );

    // A budget of 1 s cannot hold 500 epochs: the run is cut there, keeps its best epoch and says so.
    options.epochs = 500;
    options.deep.budget_seconds = 1;
    let cut = finish(&full, &options, &host());
    let run = &cut.report.runs[0];
    let summary = run.deep.as_ref().expect("a deeper run's summary");
    assert!(run.stop_reason.contains("1 s time budget"), "{}", run.stop_reason);
    assert!(summary.budget_reached && summary.budget_seconds == 1);
    assert!(!run.history.is_empty() && run.history.len() < 500);
    assert!(summary.steps >= summary.best_step && summary.best_step > 0);
    assert!(summary.seconds < 10.0, "stopped near the budget: {} s", summary.seconds);
    assert!(
        summary.sentence().contains("cut to the 1 s time budget"),
        "{}",
        summary.sentence()
    );
}
