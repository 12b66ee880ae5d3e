//! *Download for Teachable Machine / TF.js* in the Export panel: the kept model as `model.json`, `weights.bin`
//! and `metadata.json` in one zip (`export::tfjs`), and the lines that load them in Teachable Machine's and ml5's
//! code. tests/e2e/tm.test.mjs loads the download with the pinned `@tensorflow/tfjs` and `@teachablemachine/image`.

use ajuste::export::tfjs;
use ajuste::predict::exported_model;
use leptos::prelude::*;

use super::browser::download;
use super::error::AppError;
use super::export_panel::Snippet;
use super::model_flow::ModelFlow;
use super::training_flow::TrainingFlow;

/// Teachable Machine's own lines, with the versions the end-to-end test loads the export with (package.json); the
/// test runs these lines as they are, the addresses of the scripts and the photo aside.
const TM_JS: &str = r#"<img id="photo" src="photo.jpg">
<script src="https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@1.3.1/dist/tf.min.js"></script>
<script src="https://cdn.jsdelivr.net/npm/@teachablemachine/image@0.8.5/dist/teachablemachine-image.min.js"></script>
<script type="module">
const URL = "./my_model/";   // the unzipped teachable-machine.zip: model.json, weights.bin, metadata.json
const model = await tmImage.load(URL + "model.json", URL + "metadata.json");
const image = document.getElementById("photo");   // or a <canvas> or <video>
await image.decode();   // tmImage crops the centre square and resizes it to 224
const prediction = await model.predict(image);   // [{ className, probability }, …] in the labels' order
console.log(prediction);
</script>"#;

/// ml5.js 1.x: it reads the same files (labels from metadata.json) and prepares the image as tmImage does.
const ML5_JS: &str = r#"// p5.js + ml5.js 1.x: a full URL to model.json (ml5 takes anything else for a model's name)
let classifier, img;
function preload() {
  classifier = ml5.imageClassifier(new URL("my_model/model.json", location.href).href);
  img = loadImage("photo.jpg");
}
function setup() {
  classifier.classify(img, (results) => console.log(results[0].label, results[0].confidence));
}"#;

fn export_tm(training: TrainingFlow, model: ModelFlow) {
    let outcome = (|| -> Result<(), String> {
        let kept = training.trained.get_untracked().ok_or("train a model first")?;
        let weights = model
            .engine
            .with_untracked(|e| e.as_ref().map(|e| e.weights.clone()))
            .ok_or("the model weights are not loaded")?;
        let model = exported_model(&weights, &kept.trained).map_err(|e| e.to_string())?;
        let files = tfjs::tfjs_model(&model)
            .map_err(|e| e.to_string())?
            .with_none_of_these(kept.trained.report.none_of_these());
        let zip = files.zip().map_err(|e| e.to_string())?;
        download(tfjs::TM_ZIP, &zip, "application/zip")
    })();
    training.export_error.set(outcome.err().map(AppError::Export));
}

/// The format's line of the Export panel's list.
#[component]
pub fn TmExport() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let model = expect_context::<ModelFlow>();
    let done = move || training.trained.with(Option::is_some);
    view! {
        <li>
            <button type="button" data-testid="export-tm" disabled=move || !done()
                on:click=move |_| export_tm(training, model)>"Download for Teachable Machine / TF.js"</button>
            " "<code>{tfjs::TM_ZIP}</code>": "<code>"model.json"</code>", "<code>"weights.bin"</code>" and "
            <code>"metadata.json"</code>", a TF.js Layers model that Teachable Machine's code ("
            <code>"tmImage.load"</code>") and ml5's "<code>"imageClassifier"</code>" load in place of a TM model: "
            "it takes their input and gives the probabilities."
            <Snippet title="Teachable Machine (tmImage), in a web page" code=TM_JS />
            <Snippet title="ml5.js imageClassifier" code=ML5_JS />
        </li>
    }
}
