//! `model.tflite` and `model_int8.tflite` against the Rust model on the golden inputs: the float model run by
//! an independent runtime (tract's TFLite front end) within 1e-4 of the Rust model's probabilities; the int8
//! model read back through the TFLite schema (FlatBuffer verified, every quantisation as TFLite's integer
//! kernels need it) and run by a reference of those kernels (`common::tflite_int8`), agreeing with the float
//! model's top class on the golden photos. `AJUSTE_TFLITE_DIR=dir` also writes the models and the Rust
//! probabilities there, for `scripts/check_tflite.py` (the TFLite interpreter from PyPI).

mod common;

use std::io::Read;

use ajuste::export::tflite::{CALIBRATION_IMAGES, calibrate};
use ajuste::export::{ExportMetadata, merged_model_safetensors, model_tflite, model_tflite_int8};
use ajuste::floats::max_abs_diff;
use ajuste::head::Head;
use ajuste::head::metrics::softmax;
use ajuste::model::embed::input_tensor;
use ajuste::model::{BackboneDelta, load_efficientnet};
use ajuste::options::{HeadOptions, TrainOptions};
use ajuste::rng::Rng;
use ajuste::train::RunMode;
use burn::tensor::Device;
use common::{EXPECTED_TOP1, GOLDEN_INPUTS, tflite_int8};
use tract_tflite::prelude::*;
use tract_tflite::tflite::{self as schema, TensorType};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TOLERANCE: f32 = 1e-4;
const PIXELS: usize = 224 * 224 * 3;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn shipped() -> Vec<u8> {
    read("public/models/efficientnet_lite0.safetensors")
}

/// The four golden inputs as prepared pixels (224×224×3 RGB each).
fn golden_pixels() -> Vec<Vec<u8>> {
    let golden = read("tests/fixtures/golden_shipped.safetensors");
    let file = safetensors::SafeTensors::deserialize(&golden).unwrap();
    let view = file.tensor("input_u8_hwc").unwrap();
    view.data().chunks(PIXELS).map(|c| c.to_vec()).collect()
}

/// Calibration images that are not the goldens: the page's sample dataset (natural photos).
fn sample_images() -> Vec<Vec<u8>> {
    let manifest = String::from_utf8(read("public/sample/manifest.csv")).unwrap();
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .map(|f| ajuste::preprocess::prepare_rgb(&read(&format!("public/sample/{f}"))).unwrap())
        .collect()
}

/// The Rust model's probabilities (softmax of its logits) per image.
fn rust_probabilities(model_safetensors: &[u8], images: &[Vec<u8>]) -> Vec<Vec<f32>> {
    let device = Device::flex();
    let model = load_efficientnet(model_safetensors, &device).unwrap();
    images
        .iter()
        .map(|p| {
            let logits = model.forward(input_tensor(&[p], &device));
            let logits = pollster::block_on(logits.into_data_async())
                .unwrap()
                .try_to_vec::<f32>()
                .unwrap();
            softmax(&logits)
        })
        .collect()
}

fn tract_float(tflite: &[u8], image: &[u8]) -> Vec<f32> {
    let model = tract_tflite::tflite()
        .model_for_read(&mut &tflite[..])
        .expect("tract reads the TFLite model")
        .into_runnable()
        .unwrap();
    let x: Vec<f32> = image.iter().map(|&v| (v as f32 - 127.0) / 128.0).collect();
    let x = tract_ndarray::Array4::from_shape_vec((1, 224, 224, 3), x).unwrap();
    let out = model.run(tvec!(Tensor::from(x).into())).expect("tract runs it");
    out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
}

fn top(p: &[f32]) -> usize {
    ajuste::head::layers::argmax(p)
}

fn keep(name: &str, bytes: &[u8], probabilities: &[Vec<f32>]) {
    let Ok(dir) = std::env::var("AJUSTE_TFLITE_DIR") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(format!("{dir}/{name}.tflite"), bytes).unwrap();
    let flat: Vec<u8> = probabilities.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    let shape = vec![probabilities.len(), probabilities[0].len()];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &flat).unwrap();
    let file = safetensors::serialize([("probabilities", view)], None).unwrap();
    std::fs::write(format!("{dir}/{name}.probabilities.safetensors"), file).unwrap();
}

/// The float model in tract against the Rust model: every probability within 1e-4, the same top class.
fn check_float(name: &str, model_safetensors: &[u8]) -> Vec<Vec<f32>> {
    let tflite = model_tflite(model_safetensors, None).unwrap();
    let images = golden_pixels();
    let want = rust_probabilities(model_safetensors, &images);
    keep(name, &tflite, &want);
    let mut worst = 0f32;
    for (image, want) in images.iter().zip(&want) {
        let got = tract_float(&tflite, image);
        assert_eq!(got.len(), want.len());
        worst = worst.max(max_abs_diff(&got, want));
        assert_eq!(top(&got), top(want), "{name}: top class");
    }
    eprintln!("{name}: float model.tflite in tract vs Rust, max |probability difference| {worst:.2e}");
    assert!(worst < TOLERANCE, "{name}: probabilities differ by {worst}");
    want
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
fn float_models_match_rust() {
    let shipped = shipped();
    let want = check_float("shipped", &shipped);
    let tops: Vec<usize> = want.iter().map(|p| top(p)).collect();
    assert_eq!(tops, EXPECTED_TOP1);
    let linear = Head::new(1280, 3, 0, 0.0, &mut Rng::new(5));
    let labels = meta(&["a", "b", "c"], TrainOptions::default());
    let bytes = merged_model_safetensors(&shipped, &BackboneDelta::default(), &linear, &labels).unwrap();
    check_float("head_linear", &bytes);
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
    check_float("head_mlp", &bytes);
}

/// The labels file packed after the model, and the metadata buffer named as TFLite's metadata readers expect.
#[test]
fn labels_and_metadata_are_where_mediapipe_reads_them() {
    let linear = Head::new(1280, 3, 0, 0.0, &mut Rng::new(5));
    let labels = meta(&["cat", "dog", "fish"], TrainOptions::default());
    let bytes = merged_model_safetensors(&shipped(), &BackboneDelta::default(), &linear, &labels).unwrap();
    let metadata = |tflite: &[u8]| -> Vec<u8> {
        let model = schema::root_as_model(tflite).expect("the FlatBuffer verifies");
        let entry = model
            .metadata()
            .unwrap()
            .iter()
            .find(|m| m.name() == Some("TFLITE_METADATA"))
            .expect("TFLITE_METADATA");
        model
            .buffers()
            .unwrap()
            .get(entry.buffer() as usize)
            .data()
            .unwrap()
            .bytes()
            .to_vec()
    };
    let tflite = model_tflite(&bytes, Some(0.4375)).unwrap();
    let with = metadata(&tflite);
    assert_eq!(&with[4..8], b"M001", "metadata file identifier");
    // The "none of these" threshold: a ScoreThresholdingOptions table more, holding the float.
    let without = metadata(&model_tflite(&bytes, None).unwrap());
    let threshold = 0.4375f32.to_le_bytes();
    assert!(with.len() > without.len());
    assert!(with.windows(4).any(|w| w == threshold) && !without.windows(4).any(|w| w == threshold));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&tflite)).expect("a zip after the model");
    let mut file = zip.by_name("labels.txt").unwrap();
    assert_eq!(file.compression(), zip::CompressionMethod::Stored);
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    assert_eq!(text, "cat\ndog\nfish\n");
}

#[test]
fn int8_model_is_full_integer_and_agrees_with_float() {
    let shipped = shipped();
    let device = Device::flex();
    let network = load_efficientnet(&shipped, &device).unwrap();
    let calibration = sample_images();
    let refs: Vec<&[u8]> = calibration.iter().map(|v| v.as_slice()).collect();
    let ranges = pollster::block_on(calibrate(&network, &refs, &device, |_, _| {})).unwrap();
    assert_eq!(ranges.images, refs.len().min(CALIBRATION_IMAGES));
    let int8 = model_tflite_int8(&shipped, &ranges, None).unwrap();
    let float = model_tflite(&shipped, None).unwrap();
    eprintln!(
        "sizes: model.tflite {} bytes, model_int8.tflite {} bytes",
        float.len(),
        int8.len()
    );
    assert!(
        int8.len() * 3 < float.len(),
        "int8 weights take a quarter of the float ones"
    );

    // Every op's tensors as TFLite's integer kernels need them.
    let model = schema::root_as_model(&int8).expect("the FlatBuffer verifies");
    let graph = model.subgraphs().unwrap().get(0);
    let tensors = graph.tensors().unwrap();
    let input = tensors.get(graph.inputs().unwrap().get(0) as usize);
    assert_eq!(input.type_(), TensorType::UINT8);
    let q = tflite_int8::quant(&input);
    assert_eq!(
        (q.scale[0], q.zero_point[0]),
        (1.0 / 128.0, 127),
        "input (u8 - 127) / 128"
    );
    let output = tensors.get(graph.outputs().unwrap().get(0) as usize);
    assert_eq!(output.type_(), TensorType::UINT8);
    let mut convs = 0;
    for op in graph.operators().unwrap() {
        let ins: Vec<i32> = op.inputs().unwrap().iter().collect();
        if ins.len() != 3 {
            continue;
        }
        let (x, w, b) = (
            tensors.get(ins[0] as usize),
            tensors.get(ins[1] as usize),
            tensors.get(ins[2] as usize),
        );
        assert_eq!(
            (w.type_(), b.type_()),
            (TensorType::INT8, TensorType::INT32),
            "{:?}",
            w.name()
        );
        let (xq, wq, bq) = (tflite_int8::quant(&x), tflite_int8::quant(&w), tflite_int8::quant(&b));
        let shape: Vec<i32> = w.shape().unwrap().iter().collect();
        let channels = if wq.scale.len() == 1 { 1 } else { shape[wq.dim] as usize };
        assert_eq!(wq.scale.len(), channels, "{:?}: one scale per output channel", w.name());
        assert!(wq.zero_point.iter().all(|&z| z == 0), "symmetric weights");
        for (c, &s) in bq.scale.iter().enumerate() {
            let want = xq.scale[0] * wq.scale[if channels == 1 { 0 } else { c }];
            assert!(
                (s - want).abs() <= want * 1e-6,
                "{:?}: bias scale {s} vs {want}",
                b.name()
            );
        }
        convs += (channels > 1) as usize;
    }
    assert_eq!(convs, 1 + 15 * 3 + 2 + 1, "per-channel convs: stem, blocks, head");

    // The reference integer run against the float model's probabilities on the goldens.
    let images = golden_pixels();
    let want = rust_probabilities(&shipped, &images);
    let names = ["gradient", "random", "chelsea", "coffee"];
    let mut got_all = Vec::new();
    for ((image, want), name) in images.iter().zip(&want).zip(names) {
        let got = tflite_int8::run(&int8, image);
        let (t, w) = (top(&got), top(want));
        eprintln!(
            "{name}: int8 top {t} ({:.3}), float top {w} ({:.3}), max |probability difference| {:.3}",
            got[t],
            want[w],
            max_abs_diff(&got, want)
        );
        got_all.push(got);
    }
    // The photos (not the synthetic gradient and noise): the same class, its probability close.
    for i in 2..4 {
        assert_eq!(top(&got_all[i]), top(&want[i]), "{}: int8 and float disagree", names[i]);
        let w = top(&want[i]);
        assert!(
            (got_all[i][w] - want[i][w]).abs() < 0.1,
            "{}: top probability off",
            names[i]
        );
    }
    assert_eq!(got_all.len(), GOLDEN_INPUTS);
    keep("shipped_int8", &int8, &want);
}
