//! A `Host` for driving training jobs natively (as the worker drives them), and a tiny dataset.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use ajuste::data::{ClassData, Dataset, Sample};
use ajuste::train::job::Host;
use ajuste::train::{Progress, TrainEvent};

/// Epochs done and a deeper run's state then.
pub type Checkpoint = (usize, Vec<u8>);

/// Records every event; asks to stop once `stop_when` holds for a progress report.
pub struct TestHost {
    start: Instant,
    pub events: RefCell<Vec<TrainEvent>>,
    stop_when: Box<dyn Fn(&Progress) -> bool>,
    stop: Cell<bool>,
    /// Deeper runs hand their checkpoints here (epochs done, bytes) when set.
    pub checkpoints: Option<RefCell<Vec<Checkpoint>>>,
}

impl TestHost {
    pub fn new(stop_when: impl Fn(&Progress) -> bool + 'static) -> Self {
        Self {
            start: Instant::now(),
            events: RefCell::new(Vec::new()),
            stop_when: Box::new(stop_when),
            stop: Cell::new(false),
            checkpoints: None,
        }
    }

    /// A host that never stops and keeps every checkpoint.
    pub fn keeping_checkpoints() -> Self {
        Self {
            checkpoints: Some(RefCell::default()),
            ..Self::never_stopping()
        }
    }

    pub fn never_stopping() -> Self {
        Self::new(|_| false)
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
        if let TrainEvent::Progress(p) = &event
            && (self.stop_when)(p)
        {
            self.stop.set(true);
        }
        self.events.borrow_mut().push(event);
    }
    fn wants_checkpoints(&self) -> bool {
        self.checkpoints.is_some()
    }
    fn checkpoint(&self, epochs_done: usize, bytes: Vec<u8>) {
        if let Some(c) = &self.checkpoints {
            c.borrow_mut().push((epochs_done, bytes));
        }
    }
}

/// Two classes of three flat-coloured 224×224 images (red-ish and blue-ish), each image distinct.
pub fn dataset() -> Dataset {
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

/// The kept model of a job run to its end on [`dataset`] (batches of 3), on the CPU (natively: the browser tests
/// share this module and have no blocking executor).
#[cfg(not(target_arch = "wasm32"))]
pub fn trained(
    model: &ajuste::model::EfficientNetLite0,
    options: ajuste::options::TrainOptions,
) -> ajuste::train::Trained {
    use ajuste::train::EmbeddingCache;
    use ajuste::train::job::{Job, run_job};
    let (device, data) = (burn::tensor::Device::flex(), dataset());
    let host = TestHost::never_stopping();
    let job = Job {
        model,
        device: &device,
        dataset: &data,
        options,
        batch_size: 3,
    };
    pollster::block_on(run_job(job, &mut EmbeddingCache::default(), &host));
    match host.events.into_inner().pop() {
        Some(TrainEvent::Finished(trained)) => *trained,
        other => panic!("{other:?}"),
    }
}
