//! *Export*: every format of the kept model with its download and the few lines that load it elsewhere
//! (copyable), and *Open model* (`open_model.rs`). Downloads read the one kept model, as the results panel does.

use ajuste::export::snippet::{ONNX_PYTHON, PYTORCH};
use ajuste::export::{self, ExportMetadata, OnnxInput};
use ajuste::train::{RunMode, Trained};
use leptos::prelude::*;

use super::browser::{download, window};
use super::dataset_flow::DatasetFlow;
use super::error::AppError;
use super::export_tflite::TfliteExport;
use super::export_tm::TmExport;
use super::model_flow::ModelFlow;
use super::open_model::OpenModel;
use super::training_flow::TrainingFlow;

const TIMM: &str = r#"import timm
from safetensors.torch import load_file

STAGES = [1, 2, 2, 3, 3, 4, 1]
where = [(s, j) for s, n in enumerate(STAGES) for j in range(n)]
def to_timm(key):   # our names -> timm's (as scripts/check_pytorch.py)
    p = key.split(".")
    if p[0] in ("stem", "head"):
        conv, bn = ("conv_stem", "bn1") if p[0] == "stem" else ("conv_head", "bn2")
        return (conv if p[1] == "conv" else bn) + "." + p[2]
    if p[0] == "classifier":
        return key
    i = int(p[1]); s, j = where[i]
    names = ({"dw.conv": "conv_dw", "dw.bn": "bn1", "project.conv": "conv_pw", "project.bn": "bn2"} if i == 0 else
             {"expand.conv": "conv_pw", "expand.bn": "bn1", "dw.conv": "conv_dw", "dw.bn": "bn2",
              "project.conv": "conv_pwl", "project.bn": "bn3"})
    return f"blocks.{s}.{j}.{names[p[2] + '.' + p[3]]}.{p[4]}"

state = {to_timm(k): v for k, v in load_file("model.safetensors").items()}
model = timm.create_model("tf_efficientnet_lite0", num_classes=len(labels)).eval()
model.load_state_dict(state, strict=False)   # only BN step counters are missing
logits = model(x[None])   # x as for PyTorch"#;

const ONNX_WEB: &str = r#"import * as ort from "onnxruntime-web";

const session = await ort.InferenceSession.create("model.onnx");
// x: Float32Array(3 * 224 * 224), the centre square of the photo at 224×224,
// (pixel - 127) / 128, one plane per channel (R, then G, then B). Draw the photo upright, as
// training saw it: createImageBitmap(file, { imageOrientation: "from-image" }) or an <img>
// (browsers apply the EXIF orientation to both), onto a canvas filled with white first.
const input = new ort.Tensor("float32", x, [1, 3, 224, 224]);
const { logits } = await session.run({ input });
const best = logits.data.indexOf(Math.max(...logits.data));"#;

const PEFT: &str = r#"import timm
from peft import PeftModel
from safetensors.torch import load_file
# the base: the pretrained weights (efficientnet_lite0.safetensors, or a head-only model.safetensors)
# in timm's names, to_timm as for timm
base = timm.create_model("tf_efficientnet_lite0", num_classes=len(labels))
pretrained = load_file("efficientnet_lite0.safetensors")
base.load_state_dict({to_timm(k): v.float() for k, v in pretrained.items() if not k.startswith("classifier.")},
                     strict=False)
# the folder holding adapter_model.safetensors and adapter_config.json
model = PeftModel.from_pretrained(base, "export_dir/").eval()"#;

const BUNDLE: &str = r#"unzip ajuste-model.zip
# model.safetensors  model.onnx  config.json  labels.txt  README.md (the model card)
# + adapter_model.safetensors, adapter_config.json for a LoRA model
python3 scripts/check_onnx.py model.onnx   # checks the ONNX in ONNX Runtime"#;

/// Writes `text` to the clipboard (`navigator.clipboard`, allowed on a click).
fn copy(text: &'static str) {
    let clipboard = window().navigator().clipboard();
    let _ = clipboard.write_text(text);
}

#[component]
pub(super) fn Snippet(title: &'static str, code: &'static str) -> impl IntoView {
    view! {
        <details class="snippet">
            <summary>{title}</summary>
            <pre><code>{code}</code></pre>
            <button type="button" class="copy" on:click=move |_| copy(code)>"Copy"</button>
        </details>
    }
}

/// Which download of the panel.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    Onnx,
    Bundle,
}

fn export(training: TrainingFlow, model: ModelFlow, dataset: DatasetFlow, format: Format) {
    let outcome = (|| -> Result<(), String> {
        let kept = training.trained.get_untracked().ok_or("train a model first")?;
        let weights = model
            .engine
            .with_untracked(|e| e.as_ref().map(|e| e.weights.clone()))
            .ok_or("the model weights are not loaded")?;
        let Trained { head, delta, report } = &kept.trained;
        match format {
            Format::Onnx => {
                let meta = ExportMetadata::from_report(report);
                let model =
                    export::merged_model_safetensors(&weights, delta, head, &meta).map_err(|e| e.to_string())?;
                let onnx = export::model_onnx(&model, OnnxInput::Preprocessed).map_err(|e| e.to_string())?;
                download("model.onnx", &onnx, "application/octet-stream")
            }
            Format::Bundle => {
                // Image counts only when they are the ones the model was trained on.
                let counts = (!training.stale.get_untracked() && kept.opened.is_none()).then(|| {
                    dataset
                        .dataset
                        .with_untracked(|d| d.classes.iter().map(|c| c.samples.len()).collect::<Vec<_>>())
                });
                let files =
                    export::bundle_files(&weights, &kept.trained, counts.as_deref()).map_err(|e| e.to_string())?;
                let zip = export::bundle_zip(&files).map_err(|e| e.to_string())?;
                download("ajuste-model.zip", &zip, "application/zip")
            }
        }
    })();
    training.export_error.set(outcome.err().map(AppError::Export));
}

#[component]
pub fn ExportPanel() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let model = expect_context::<ModelFlow>();
    let dataset = expect_context::<DatasetFlow>();
    let done = move || training.trained.with(Option::is_some);
    let lora = move || training.kept_mode() == Some(RunMode::Lora);
    let on = move |format: Format| move |_| export(training, model, dataset, format);
    view! {
        <div class="export" data-testid="export-panel">
            <h3>"Export"</h3>
            <ul class="formats" role="list">
                <li>
                    <strong>"model.safetensors"</strong>" (the button above): PyTorch and timm."
                    <Snippet title="PyTorch (scripts/effl0.py)" code=PYTORCH />
                    <Snippet title="timm" code=TIMM />
                </li>
                <li>
                    <button type="button" data-testid="export-onnx" disabled=move || !done()
                        on:click=on(Format::Onnx)>"Download model.onnx"</button>
                    " ONNX (opset 13): input "<code>"input"</code>" [batch, 3, 224, 224] preprocessed, outputs "
                    <code>"logits"</code>" and "<code>"embedding"</code>"."
                    <Snippet title="ONNX Runtime, Python" code=ONNX_PYTHON />
                    <Snippet title="onnxruntime-web, in the browser" code=ONNX_WEB />
                </li>
                <TmExport />
                <TfliteExport />
                <Show when=lora>
                    <li>
                        <strong>"LoRA adapter"</strong>" (the buttons above): Hugging Face PEFT on timm."
                        <Snippet title="PEFT" code=PEFT />
                    </li>
                </Show>
                <li>
                    <button type="button" data-testid="export-bundle" disabled=move || !done()
                        on:click=on(Format::Bundle)>"Download everything (.zip)"</button>
                    " The model as safetensors and ONNX (and the PEFT adapter of a LoRA model), "<code>"config.json"</code>", "
                    <code>"labels.txt"</code>" and a model card ("
                    <code>"README.md"</code>": classes, image counts, held-out accuracy, recipe, licence); the Teachable Machine and TFLite files are downloaded on their own, above."
                    <Snippet title="What is inside" code=BUNDLE />
                </li>
            </ul>
            <OpenModel />
        </div>
    }
}
