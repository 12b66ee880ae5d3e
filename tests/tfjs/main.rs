//! The Teachable Machine / TF.js export (`src/export/tfjs.rs`) checked natively (`cargo test --release --test
//! tfjs`): `model.json` parses as a Keras functional model with the layers the network needs, `weights.bin` holds
//! exactly what the manifest lists and every layer's weights, `metadata.json` has the fields `tmImage` reads, and
//! the first conv's fold of `tmImage`'s input normalisation is exact. Then a small interpreter of the Keras layers
//! (`keras_run.rs`, written from their definitions: channels last, TF "SAME" padding) runs the exported files on
//! the golden images with `x / 127 − 1` as `tmImage.capture` gives it, and gives the Rust model's probabilities
//! and top class. The real consumers (`@tensorflow/tfjs`, `@teachablemachine/image`) load it in
//! tests/e2e/tm.test.mjs.

mod keras_run;

use std::collections::HashMap;

use ajuste::export::tfjs::keras::{KerasPadding, keras_padding, tf_same_padding};
use ajuste::export::tfjs::{self, TfjsModel, tfjs_model};
use ajuste::export::{ExportMetadata, merged_model_safetensors};
use ajuste::floats::max_abs_diff;
use ajuste::head::Head;
use ajuste::model::blocks::same_padding;
use ajuste::model::imagenet::softmax;
use ajuste::model::{BLOCKS, BackboneDelta, read_backbone};
use ajuste::options::{HeadOptions, TrainOptions};
use ajuste::predict::Predictor;
use ajuste::preprocess::prepare_rgb;
use ajuste::rng::Rng;
use ajuste::train::RunMode;
use burn::tensor::Device;
use keras_run::{Weight, conv, manifest_weights, run_keras, tm_input};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GOLDEN_PNGS: [&str; 4] = ["chelsea_cat", "coffee", "gradient", "random_seed0"];
/// Our f32 network against the interpreter's f32 sums in another order.
const TOLERANCE: f32 = 1e-4;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The prepared 224×224 RGB pixels of each golden image.
fn golden_pixels() -> Vec<Vec<u8>> {
    GOLDEN_PNGS
        .iter()
        .map(|name| prepare_rgb(&read(&format!("tests/fixtures/golden/{name}.png"))).unwrap())
        .collect()
}

/// Every structural property a TF.js loader relies on; returns the parsed model.json and weights.
fn check_files(name: &str, files: &TfjsModel, labels: &[String]) -> (Value, HashMap<String, Weight>) {
    let model: Value = serde_json::from_str(&files.model_json).expect("model.json parses");
    assert_eq!(model["format"], "layers-model");
    let topology = &model["modelTopology"];
    assert_eq!(topology["class_name"], "Model");
    let weights = manifest_weights(&model, &files.weights_bin);
    let layers = topology["config"]["layers"].as_array().unwrap();
    let mut names = std::collections::HashSet::new();
    let mut used = 0;
    for layer in layers {
        let (class, layer_name) = (layer["class_name"].as_str().unwrap(), layer["name"].as_str().unwrap());
        assert!(names.insert(layer_name), "{name}: layer {layer_name} twice");
        assert_eq!(layer["config"]["name"], layer_name);
        for input in layer["inbound_nodes"]
            .get(0)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(
                names.contains(input[0].as_str().unwrap()),
                "{layer_name}: input {input} not defined before it"
            );
        }
        let kinds: &[&str] = match class {
            "Conv2D" | "Dense" => &["kernel", "bias"],
            "DepthwiseConv2D" => &["depthwise_kernel", "bias"],
            _ => &[],
        };
        for kind in kinds {
            let key = format!("{layer_name}/{kind}");
            let (shape, values) = weights.get(&key).unwrap_or_else(|| panic!("{name}: no weight {key}"));
            assert!(values.iter().all(|v| v.is_finite()), "{key}");
            let units = ["filters", "units"].iter().find_map(|f| layer["config"][f].as_u64());
            if let Some(units) = units {
                assert_eq!(*shape.last().unwrap() as u64, units, "{key}: {shape:?}");
            }
        }
        used += kinds.len();
    }
    assert_eq!(used, weights.len(), "{name}: weights no layer uses");
    let output = &topology["config"]["output_layers"][0][0];
    let last = layers.iter().find(|l| l["name"] == *output).expect("the output layer");
    assert_eq!(last["class_name"], "Dense");
    assert_eq!(
        last["config"]["activation"], "softmax",
        "TM's models end with a softmax"
    );
    assert_eq!(last["config"]["units"], labels.len());
    assert!(
        layers.iter().all(|l| l["class_name"] != "ZeroPadding2D"),
        "SAME covers every conv of this network"
    );
    let metadata: Value = serde_json::from_str(&files.metadata_json).expect("metadata.json parses");
    assert_eq!(metadata["labels"], serde_json::json!(labels));
    assert_eq!(metadata["imageSize"], 224);
    assert_eq!(metadata["packageName"], "@teachablemachine/image");
    // The versions the end-to-end test loads it with.
    let package: Value = serde_json::from_slice(&read("package.json")).unwrap();
    assert_eq!(metadata["tfjsVersion"], package["devDependencies"]["@tensorflow/tfjs"]);
    (model, weights)
}

/// With `AJUSTE_TFJS_DIR=dir`, writes the three files and the Rust probabilities on the golden images
/// (`probabilities.json`) to `dir/NAME/`, to load them in TF.js by hand.
fn keep_for_tfjs(name: &str, files: &TfjsModel, probabilities: &serde_json::Map<String, Value>) {
    let Ok(dir) = std::env::var("AJUSTE_TFJS_DIR") else {
        return;
    };
    let dir = format!("{dir}/{}", name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, bytes) in files.files() {
        std::fs::write(format!("{dir}/{file}"), bytes).unwrap();
    }
    std::fs::write(
        format!("{dir}/probabilities.json"),
        Value::from(probabilities.clone()).to_string(),
    )
    .unwrap();
}

/// The export of `model_safetensors` checked, then run by the interpreter against the Rust model on the golden
/// images; returns the largest probability difference.
fn check_against_rust(name: &str, model_safetensors: &[u8], predictor: &Predictor) -> f32 {
    let files = tfjs_model(model_safetensors).unwrap();
    let (model, weights) = check_files(name, &files, predictor.labels());
    let device = Device::flex();
    let mut worst = 0.0f32;
    let mut all = serde_json::Map::new();
    for (image, pixels) in GOLDEN_PNGS.iter().zip(golden_pixels()) {
        let ours = softmax(&pollster::block_on(predictor.logits(&pixels, &device)).unwrap());
        all.insert(image.to_string(), serde_json::json!(ours));
        let theirs = run_keras(&model, &weights, &tm_input(&pixels));
        let diff = max_abs_diff(&theirs, &ours);
        let top = |p: &[f32]| ajuste::head::layers::argmax(p);
        assert_eq!(top(&theirs), top(&ours), "{name} {image}: top class");
        worst = worst.max(diff);
    }
    eprintln!("{name}: Keras layers on tmImage's input vs the Rust model, probabilities within {worst:.2e}");
    keep_for_tfjs(name, &files, &all);
    assert!(worst < TOLERANCE, "{name}: probabilities differ by {worst}");
    worst
}

fn meta(labels: &[&str], options: TrainOptions) -> ExportMetadata {
    ExportMetadata {
        labels: labels.iter().map(|l| l.to_string()).collect(),
        options,
        best_epoch: 0,
        epochs_run: 1,
        val_accuracy: 1.0,
        val_loss: 0.1,
        train_accuracy: 1.0,
        train_loss: 0.1,
        per_class_val_accuracy: vec![1.0; labels.len()],
        stop_reason: "test".into(),
        num_train: 3,
        num_val: 3,
        kept: RunMode::Head,
    }
}

#[test]
fn the_shipped_network_in_keras_layers_gives_the_rust_probabilities() {
    let shipped = read("public/models/efficientnet_lite0.safetensors");
    let predictor = Predictor::imagenet(&shipped, &Device::flex()).unwrap();
    check_against_rust("shipped (ImageNet)", &shipped, &predictor);
}

#[test]
fn linear_and_mlp_heads_in_keras_layers_give_the_rust_probabilities() {
    let shipped = read("public/models/efficientnet_lite0.safetensors");
    let linear = Head::new(1280, 3, 0, 0.0, &mut Rng::new(5));
    let labels = ["cat", "coffee", "noise"];
    let bytes = merged_model_safetensors(
        &shipped,
        &BackboneDelta::default(),
        &linear,
        &meta(&labels, TrainOptions::default()),
    )
    .unwrap();
    check_against_rust(
        "linear head",
        &bytes,
        &Predictor::load(&bytes, &Device::flex()).unwrap(),
    );

    let options = TrainOptions {
        head: HeadOptions {
            hidden_units: 16,
            dropout: 0.2,
            ..Default::default()
        },
        ..TrainOptions::default()
    };
    let mlp = Head::new(1280, 4, 16, 0.2, &mut Rng::new(6));
    let bytes = merged_model_safetensors(
        &shipped,
        &BackboneDelta::default(),
        &mlp,
        &meta(&["a", "b", "c", "d"], options),
    )
    .unwrap();
    let files = tfjs_model(&bytes).unwrap();
    assert!(
        files.model_json.contains(r#""name":"hidden""#),
        "the hidden layer is written"
    );
    check_against_rust("mlp head", &bytes, &Predictor::load(&bytes, &Device::flex()).unwrap());
}

#[test]
fn the_first_conv_folds_tm_input_normalisation_exactly() {
    let shipped = read("public/models/efficientnet_lite0.safetensors");
    let stem = read_backbone(&shipped).unwrap().stem;
    let files = tfjs_model(&shipped).unwrap();
    let model: Value = serde_json::from_str(&files.model_json).unwrap();
    let weights = manifest_weights(&model, &files.weights_bin);
    let pixels = &golden_pixels()[0];
    // Ours: (x − 127) / 128 through the folded stem conv ([32, 3, 3, 3], NCHW), TF-SAME (0, 1, 0, 1), stride 2.
    let ours_in: Vec<f32> = pixels.iter().map(|&v| (v as f32 - 127.0) / 128.0).collect();
    let mut ours = vec![0.0f32; 112 * 112 * 32];
    for (oy, ox, o) in (0..112).flat_map(|y| (0..112).flat_map(move |x| (0..32).map(move |o| (y, x, o)))) {
        let mut sum = stem.bias[o] as f64;
        for (i, ky, kx) in (0..3).flat_map(|i| (0..3).flat_map(move |y| (0..3).map(move |x| (i, y, x)))) {
            let (iy, ix) = (2 * oy + ky, 2 * ox + kx);
            if iy < 224 && ix < 224 {
                sum += stem.weight[((o * 3 + i) * 3 + ky) * 3 + kx] as f64 * ours_in[(iy * 224 + ix) * 3 + i] as f64;
            }
        }
        ours[(oy * 112 + ox) * 32 + o] = sum as f32;
    }
    let kernel = &weights["stem_conv/kernel"];
    let through = |kernel: &Weight| {
        let out = conv(&tm_input(pixels), kernel, &weights["stem_conv/bias"].1, 2, true, false);
        assert_eq!((out.h, out.w, out.c), (112, 112, 32));
        max_abs_diff(&out.data, &ours)
    };
    let worst = through(kernel);
    // The same kernel without the fold (127/128 undone): what a missing or wrong fold would give.
    let unfolded = (kernel.0.clone(), kernel.1.iter().map(|w| w * 128.0 / 127.0).collect());
    let off = through(&unfolded);
    eprintln!(
        "stem conv, tmImage's input through the export vs ours through the model: {worst:.2e} ({off:.2e} unfolded)"
    );
    // f32 rounding only (outputs of a few units, sums of 27 products in another order).
    assert!(worst < 1e-4, "the fold of x/127 − 1 into the stem is off by {worst}");
    assert!(
        off > 100.0 * worst,
        "the check cannot tell the fold ({worst}) from none ({off})"
    );
}

#[test]
fn keras_same_is_the_model_padding_and_other_paddings_are_explicit() {
    // Every conv of the network: the model's TF-SAME padding is Keras' "same".
    assert_eq!(keras_padding(same_padding(224, 3, 2), 224, 3, 2), KerasPadding::Same);
    for spec in BLOCKS {
        let pad = same_padding(spec.size_in, spec.kernel, spec.stride);
        assert_eq!(pad, tf_same_padding(spec.size_in, spec.kernel, spec.stride));
        assert_eq!(
            keras_padding(pad, spec.size_in, spec.kernel, spec.stride),
            KerasPadding::Same
        );
    }
    // A symmetric k/2 padding of a stride-2 conv on an even plane is not TF's: written as explicit zeros.
    assert_eq!(keras_padding([1; 4], 112, 3, 2), KerasPadding::Explicit([1; 4]));
    assert_eq!(tf_same_padding(112, 3, 2), [0, 0, 1, 1]);
    assert_eq!(tf_same_padding(56, 5, 2), [1, 1, 2, 2]);
}

#[test]
fn the_zip_holds_the_three_files_and_a_bad_model_is_refused() {
    let shipped = read("public/models/efficientnet_lite0.safetensors");
    let files = tfjs_model(&shipped).unwrap();
    let zip = files.zip().unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    assert_eq!(names, ["model.json", "weights.bin", "metadata.json"]);
    let mut bin = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("weights.bin").unwrap(), &mut bin).unwrap();
    assert_eq!(bin, files.weights_bin);
    // The same model, the same bytes (no time stamp).
    assert_eq!(tfjs_model(&shipped).unwrap(), files);
    let err = tfjs_model(b"not a model").unwrap_err().to_string();
    assert!(err.contains("safetensors"), "{err}");
}

#[test]
fn the_panel_and_the_docs_load_the_pinned_versions() {
    let package: Value = serde_json::from_slice(&read("package.json")).unwrap();
    let pins = &package["devDependencies"];
    assert_eq!(pins["@tensorflow/tfjs"], tfjs::TFJS_VERSION);
    for doc in ["docs/exports.md", "src/app/export_tm.rs"] {
        let text = String::from_utf8(read(doc)).unwrap();
        for name in ["@tensorflow/tfjs", "@teachablemachine/image"] {
            let pinned = format!("{name}@{}/", pins[name].as_str().unwrap());
            assert!(text.contains(&pinned), "{doc} does not load {pinned}");
        }
    }
}
