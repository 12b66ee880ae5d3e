//! The int8 TFLite export's calibration, in the worker that holds the kept model (`LoadPredictor`): the float
//! network run on the worker's device over at most `CALIBRATION_IMAGES` of the training images (the dataset's
//! split as the training made it), read from the page's storage where they are kept, progress posted as it goes.
//! Nothing leaves the machine: the page then writes `model_int8.tflite` from the ranges.

use std::rc::Rc;

use burn::tensor::Device;

use crate::data::snapshot;
use crate::data::split::stratified_split;
use crate::export::tflite::{Ranges, calibrate, calibration_subset};
use crate::predict::Predictor;
use crate::protocol::{CalibrationStep, FromWorker, ToWorker};

use super::store;

/// Handles a `Calibrate` (the worker's messages the worker itself does not know); anything else is reported as
/// unreadable, as before.
pub fn on_message(
    message: Option<Result<ToWorker, serde_json::Error>>,
    bytes: Vec<u8>,
    predictor: Option<(Device, Rc<Predictor>)>,
    post: fn(&FromWorker),
) {
    match message {
        Some(Ok(ToWorker::Calibrate { val_fraction, seed })) => wasm_bindgen_futures::spawn_local(async move {
            let result = run(predictor, val_fraction, seed, bytes, post).await;
            post(&FromWorker::Calibration(CalibrationStep::Done(result)));
        }),
        other => web_sys::console::error_1(&format!("worker: unreadable message {other:?}").into()),
    }
}

async fn run(
    predictor: Option<(Device, Rc<Predictor>)>,
    val_fraction: f32,
    seed: u64,
    dataset: Vec<u8>,
    post: fn(&FromWorker),
) -> Result<Ranges, String> {
    let (device, predictor) = predictor.ok_or("the trained model is not loaded")?;
    let dataset = snapshot::decode(&dataset)?;
    let samples: Vec<_> = dataset.classes.iter().flat_map(|c| c.samples.iter()).collect();
    let train = stratified_split(&dataset.labels(), val_fraction, seed).train;
    let chosen: Vec<_> = calibration_subset(train.len())
        .into_iter()
        .map(|i| samples[train[i]])
        .collect();
    if chosen.is_empty() {
        return Err("no training images are loaded to calibrate the int8 model on: load them first".into());
    }
    let stored: Vec<u64> = chosen.iter().filter(|s| !s.in_memory()).map(|s| s.key()).collect();
    let mut from_store = if stored.is_empty() {
        Vec::new()
    } else {
        store::read_images(&store::open().await?, &stored).await?
    }
    .into_iter();
    let pixels: Vec<Vec<u8>> = chosen
        .iter()
        .map(|s| {
            if s.in_memory() {
                s.pixels.clone()
            } else {
                from_store.next().unwrap_or_default()
            }
        })
        .collect();
    let images: Vec<&[u8]> = pixels.iter().map(Vec::as_slice).collect();
    let progress = |done, total| post(&FromWorker::Calibration(CalibrationStep::Progress { done, total }));
    calibrate(predictor.network(), &images, &device, progress).await
}
