//! *TFLite (float)* and *TFLite int8* in the Export panel (`export::tflite`): `model.tflite` written here from the
//! kept model; `model_int8.tflite` calibrated first in a worker of its own on the training images (at most
//! `CALIBRATION_IMAGES`, with a progress bar), then written here. Both carry their labels and normalisation in
//! the TFLite metadata, for MediaPipe's ImageClassifier; the lines that load them in Python and on Android.

use ajuste::data::snapshot;
use ajuste::export::snippet::TFLITE_PYTHON;
use ajuste::export::tflite::CALIBRATION_IMAGES;
use ajuste::export::{model_tflite, model_tflite_int8};
use ajuste::predict::exported_model;
use leptos::prelude::*;

use super::browser::download;
use super::dataset_flow::DatasetFlow;
use super::error::AppError;
use super::export_panel::Snippet;
use super::model_flow::ModelFlow;
use super::runner::TrainingService;
use super::training_flow::TrainingFlow;

/// Either model in MediaPipe's ImageClassifier on Android: labels and normalisation come from the metadata.
const ANDROID: &str = r#"// build.gradle: implementation("com.google.mediapipe:tasks-vision:latest.release")
// the model in app/src/main/assets/
import com.google.mediapipe.framework.image.BitmapImageBuilder
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.vision.imageclassifier.ImageClassifier

val options = ImageClassifier.ImageClassifierOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("model.tflite").build())   // or model_int8.tflite
    .setMaxResults(3)
    .build()
val classifier = ImageClassifier.createFromOptions(context, options)
// bitmap: the photo upright, cropped to its centre square as training did (MediaPipe resizes it to 224×224)
val result = classifier.classify(BitmapImageBuilder(bitmap).build())
val best = result.classificationResult().classifications()[0].categories()[0]
Log.i("ajuste", "${best.categoryName()} ${best.score()}")"#;

/// `model.tflite`, written from the kept model here.
fn export_float(training: TrainingFlow, model: ModelFlow) {
    let outcome = (|| -> Result<(), String> {
        let kept = training.trained.get_untracked().ok_or("train a model first")?;
        let weights = model
            .engine
            .with_untracked(|e| e.as_ref().map(|e| e.weights.clone()))
            .ok_or("the model weights are not loaded")?;
        let model = exported_model(&weights, &kept.trained).map_err(|e| e.to_string())?;
        let threshold = kept.trained.report.none_of_these();
        let tflite = model_tflite(&model, Some(threshold)).map_err(|e| e.to_string())?;
        download("model.tflite", &tflite, "application/octet-stream")
    })();
    training.export_error.set(outcome.err().map(AppError::Export));
}

/// `model_int8.tflite`: calibrated in the worker on the training images loaded now, then written here.
async fn export_int8(
    training: TrainingFlow,
    model: ModelFlow,
    dataset: DatasetFlow,
    service: TrainingService,
    progress: RwSignal<Option<(usize, usize)>>,
) {
    progress.set(Some((0, 0)));
    let outcome = async {
        let kept = training.trained.get_untracked().ok_or("train a model first")?;
        let engine = model.engine.get_untracked().ok_or("the model weights are not loaded")?;
        let bytes = dataset.dataset.with_untracked(|d| snapshot::encode(d));
        let on_progress = |done, total| progress.set(Some((done, total)));
        let ranges = service
            .calibrate(&engine, (kept.id, &kept.trained), &bytes, on_progress)
            .await?;
        let model = exported_model(&engine.weights, &kept.trained).map_err(|e| e.to_string())?;
        let threshold = kept.trained.report.none_of_these();
        let tflite = model_tflite_int8(&model, &ranges, Some(threshold)).map_err(|e| e.to_string())?;
        download("model_int8.tflite", &tflite, "application/octet-stream")
    }
    .await;
    progress.set(None);
    training.export_error.set(outcome.err().map(AppError::Export));
}

/// The format's line of the Export panel's list.
#[component]
pub fn TfliteExport() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let model = expect_context::<ModelFlow>();
    let dataset = expect_context::<DatasetFlow>();
    // A worker of its own: the calibration never waits for Try it, nor Try it for it.
    let service = StoredValue::new_local(TrainingService::default());
    let progress = RwSignal::new(None::<(usize, usize)>);
    let done = move || training.trained.with(Option::is_some);
    let int8 = move |_| {
        let service = service.get_value();
        leptos::task::spawn_local(export_int8(training, model, dataset, service, progress));
    };
    let status = move || {
        progress.get().map(|(done, total)| {
            let text = if total == 0 {
                "Building the model for calibration…".to_string()
            } else {
                format!("Calibrating on the training images: {done} of {total}")
            };
            view! {
                <span class="calibration" data-testid="tflite-int8-progress" role="status">
                    <progress max=total.max(1) value=done></progress>" "{text}
                </span>
            }
        })
    };
    view! {
        <li>
            <button type="button" data-testid="export-tflite" disabled=move || !done()
                on:click=move |_| export_float(training, model)>"TFLite (float)"</button>
            " "
            <button type="button" data-testid="export-tflite-int8" disabled=move || !done() || progress.get().is_some()
                on:click=int8>"TFLite int8"</button>
            " "<code>"model.tflite"</code>" and "<code>"model_int8.tflite"</code>" for TFLite (LiteRT) and "
            "MediaPipe's ImageClassifier: input [1, 224, 224, 3] (float "<code>"(u8 - 127) / 128"</code>", or the "
            "uint8 pixels), output the probabilities; in the model's metadata the labels and the \u{201c}none of "
            "these\u{201d} threshold (below it MediaPipe gives no class). The int8 model is "
            "quantised here, on up to "{CALIBRATION_IMAGES}" of your training images: nothing leaves the machine."
            <div>{status}</div>
            <Snippet title="Python (ai-edge-litert)" code=TFLITE_PYTHON />
            <Snippet title="Android (MediaPipe ImageClassifier)" code=ANDROID />
        </li>
    }
}
