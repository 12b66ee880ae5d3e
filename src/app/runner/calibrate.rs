//! [`TrainingService::calibrate`]: the kept model built in the worker (as Try it builds it), then its int8
//! calibration there on the training images (`web::calibrate`), with its progress.

use ajuste::export::tflite::Ranges;
use ajuste::protocol::{CalibrationStep, FromWorker, ModelId, ToWorker};
use ajuste::train::Trained;

use super::super::backend::BackendKind;
use super::super::model_flow::Engine;
use super::{TrainingService, post};

impl TrainingService {
    /// The activation ranges of `trained`'s exported model over the training images of `dataset` (its
    /// `data::snapshot` bytes; split with the run's validation fraction and seed, as the training split it), for `export::model_tflite_int8`;
    /// `on_progress(done, total)` as batches of images are run. One call at a time.
    pub async fn calibrate(
        &self,
        engine: &Engine,
        trained: (ModelId, &Trained),
        dataset: &[u8],
        on_progress: impl Fn(usize, usize),
    ) -> Result<Ranges, String> {
        let worker = self.listening().await?;
        let key = (engine.kind, Some(trained.0));
        if self.link.borrow().as_ref().and_then(|l| l.predictor) != Some(key) {
            if let Some(link) = self.link.borrow_mut().as_mut() {
                link.predictor = None;
            }
            let load = ToWorker::LoadPredictor {
                webgpu: engine.kind == BackendKind::WebGpu,
                trained: Some(Box::new(trained.1.clone())),
            };
            post(&worker, &load, Some(&engine.weights));
            self.loaded().await?;
            if let Some(link) = self.link.borrow_mut().as_mut() {
                link.predictor = Some(key);
            }
        }
        let options = &trained.1.report.options;
        let message = ToWorker::Calibrate {
            val_fraction: options.val_fraction,
            seed: options.seed,
        };
        post(&worker, &message, Some(dataset));
        loop {
            match self.next().await {
                FromWorker::Calibration(CalibrationStep::Progress { done, total }) => on_progress(done, total),
                FromWorker::Calibration(CalibrationStep::Done(result)) => return result,
                FromWorker::LoadFailed(e) => return Err(e),
                _ => {}
            }
        }
    }
}
