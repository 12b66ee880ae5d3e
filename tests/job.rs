//! A whole training job as the page runs it (embed with the shipped backbone, train the head), driven
//! through a `Host`, as the training worker runs it: the events, the cache reuse and a stop within one step.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use ajuste::data::{ClassData, Dataset, Sample};
use ajuste::model::load_efficientnet;
use ajuste::train::job::{Host, Job, run_job};
use ajuste::train::{EmbeddingCache, Stage, TrainEvent, TrainOptions};
use burn::tensor::Device;

struct TestHost {
    start: Instant,
    events: RefCell<Vec<TrainEvent>>,
    /// Ask to stop once this many images are embedded.
    stop_after_images: Option<usize>,
    stop: Cell<bool>,
}

impl TestHost {
    fn new(stop_after_images: Option<usize>) -> Self {
        Self {
            start: Instant::now(),
            events: RefCell::new(Vec::new()),
            stop_after_images,
            stop: Cell::new(false),
        }
    }
}

impl Host for TestHost {
    fn now_seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
    async fn pause(&self) {}
    fn stop_requested(&self) -> bool {
        self.stop.get()
    }
    fn emit(&self, event: TrainEvent) {
        if let (TrainEvent::Progress(p), Some(n)) = (&event, self.stop_after_images)
            && p.stage == Stage::Embedding
            && p.done >= n
        {
            self.stop.set(true);
        }
        self.events.borrow_mut().push(event);
    }
}

/// Two classes of three flat-coloured 224×224 images (red-ish and blue-ish), each image distinct.
fn dataset() -> Dataset {
    let class = |name: &str, rgb: [u8; 3]| {
        let samples = (0..3u8)
            .map(|i| {
                let pixels = (0..224 * 224)
                    .flat_map(|_| rgb.map(|c| c.saturating_add(i * 20)))
                    .collect();
                Sample::new(format!("{i}.png"), pixels)
            })
            .collect();
        ClassData::new(name, samples)
    };
    Dataset {
        classes: vec![class("red", [200, 30, 30]), class("blue", [30, 30, 200])],
    }
}

#[test]
fn a_job_embeds_trains_reuses_the_cache_and_stops_within_a_step() {
    let device = Device::flex();
    let weights = std::fs::read("public/models/efficientnet_lite0.safetensors").unwrap();
    let model = load_efficientnet(&weights, &device).unwrap();
    let data = dataset();
    let options = TrainOptions {
        epochs: 4,
        val_fraction: 0.34,
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
    let host = TestHost::new(Some(1));
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
    let host = TestHost::new(None);
    pollster::block_on(run_job(job(), &mut cache, &host));
    let events = host.events.into_inner();
    let TrainEvent::Progress(first) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!((first.stage, first.total), (Stage::Embedding, 4));
    let epochs = events.iter().filter(|e| matches!(e, TrainEvent::Epoch(_))).count();
    let Some(TrainEvent::Finished(trained)) = events.last() else {
        panic!("{:?}", events.last())
    };
    assert_eq!(epochs, trained.report.history.len());
    assert_eq!(trained.report.labels, ["red", "blue"]);
    assert_eq!(trained.report.num_train + trained.report.num_val, 6);
    assert_eq!(cache.len(), 6);

    // Everything cached: no image is embedded again.
    let host = TestHost::new(None);
    pollster::block_on(run_job(job(), &mut cache, &host));
    let events = host.events.into_inner();
    let TrainEvent::Progress(first) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(first.total, 0);
    assert!(matches!(events.last(), Some(TrainEvent::Finished(_))));
}
