//! `model.onnx` run by an independent runtime (tract) gives the Rust model's logits on the golden inputs, for
//! the shipped weights (against the PyTorch goldens too), a linear and an MLP head, and models fine-tuned for a
//! few steps with LoRA and with the last blocks retrained. `AJUSTE_ONNX_DIR=dir` also writes each ONNX and the
//! Rust logits there, for `scripts/check_onnx.py` (ONNX Runtime).

mod common;

use ajuste::export::{ExportMetadata, OnnxInput, merged_model_safetensors, model_onnx};
use ajuste::floats::max_abs_diff;
use ajuste::head::Head;
use ajuste::model::{BackboneDelta, load_efficientnet};
use ajuste::options::{FinetuneChoice, HeadOptions, TrainOptions};
use ajuste::rng::Rng;
use ajuste::train::{RunMode, Trained};
use burn::tensor::{Device, TensorData};
use common::job_host::trained;
use common::{GOLDEN_INPUTS, golden_input};
use tract_onnx::prelude::*;

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/golden_shipped.safetensors");
const TOLERANCE: f32 = 1e-4;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (logits, embedding) of the golden batch in tract.
fn tract_run(onnx: &[u8], input: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .expect("tract reads the ONNX")
        .with_input_fact(0, f32::fact([GOLDEN_INPUTS, 3, 224, 224]).into())
        .unwrap()
        .into_optimized()
        .expect("tract optimises the graph")
        .into_runnable()
        .unwrap();
    let x = tract_ndarray::Array4::from_shape_vec((GOLDEN_INPUTS, 3, 224, 224), input.to_vec()).unwrap();
    let out = model.run(tvec!(Tensor::from(x).into())).expect("tract runs the ONNX");
    let values = |i: usize| {
        out[i]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>()
    };
    (values(0), values(1))
}

/// (logits, embedding) of the golden batch in the Rust model loaded from `model_safetensors`.
fn rust_run(model_safetensors: &[u8], input: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex();
    let model = load_efficientnet(model_safetensors, &device).unwrap();
    let x =
        burn::tensor::Tensor::<4>::from_data(TensorData::new(input.to_vec(), [GOLDEN_INPUTS, 3, 224, 224]), &device);
    let embedding = model.embed(x);
    let logits = model.classifier.forward(embedding.clone());
    let read = |t: burn::tensor::Tensor<2>| {
        pollster::block_on(t.into_data_async())
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap()
    };
    (read(logits), read(embedding))
}

/// Writes the ONNX and the Rust logits for `scripts/check_onnx.py` when `AJUSTE_ONNX_DIR` is set.
fn keep_for_onnx_runtime(name: &str, onnx: &[u8], logits: &[f32], classes: usize) {
    let Ok(dir) = std::env::var("AJUSTE_ONNX_DIR") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(format!("{dir}/{name}.onnx"), onnx).unwrap();
    let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![GOLDEN_INPUTS, classes], &bytes).unwrap();
    let file = safetensors::serialize([("logits", view)], None).unwrap();
    std::fs::write(format!("{dir}/{name}.logits.safetensors"), file).unwrap();
}

/// The ONNX of `model_safetensors` in tract against the Rust model: logits and embeddings within 1e-4, and the
/// same top class. Returns the largest logit difference.
fn check(name: &str, model_safetensors: &[u8]) -> f32 {
    let input = golden_input(&read(GOLDEN));
    let onnx = model_onnx(model_safetensors, OnnxInput::Preprocessed).unwrap();
    let (logits, embedding) = tract_run(&onnx, &input);
    let (want_logits, want_embedding) = rust_run(model_safetensors, &input);
    let logit_diff = max_abs_diff(&logits, &want_logits);
    let embedding_diff = max_abs_diff(&embedding, &want_embedding);
    eprintln!("{name}: tract vs Rust, logits {logit_diff:.2e}, embedding {embedding_diff:.2e}");
    assert!(logit_diff < TOLERANCE, "{name}: logits differ by {logit_diff}");
    assert!(
        embedding_diff < TOLERANCE,
        "{name}: embeddings differ by {embedding_diff}"
    );
    let classes = want_logits.len() / GOLDEN_INPUTS;
    let top = |l: &[f32]| l.chunks(classes).map(ajuste::head::layers::argmax).collect::<Vec<_>>();
    assert_eq!(top(&logits), top(&want_logits));
    keep_for_onnx_runtime(name, &onnx, &want_logits, classes);
    logit_diff
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
fn shipped_weights_onnx_matches_rust_and_the_pytorch_goldens() {
    let shipped = read(SHIPPED);
    check("shipped", &shipped);
    // And the independent runtime against the PyTorch reference on the same weights.
    let golden = read(GOLDEN);
    let onnx = model_onnx(&shipped, OnnxInput::Preprocessed).unwrap();
    let (logits, _) = tract_run(&onnx, &golden_input(&golden));
    let file = ajuste::model::TensorFile::parse(&golden).unwrap();
    let want = file.f32("logits", &[GOLDEN_INPUTS, 1000]).unwrap();
    let diff = max_abs_diff(&logits, &want);
    eprintln!("shipped: tract vs PyTorch goldens, logits {diff:.2e}");
    assert!(diff < TOLERANCE, "tract vs PyTorch: {diff}");
}

#[test]
fn linear_and_mlp_heads_match_and_pixel_input_normalises_in_the_graph() {
    let shipped = read(SHIPPED);
    let linear = Head::new(1280, 3, 0, 0.0, &mut Rng::new(5));
    let bytes = merged_model_safetensors(
        &shipped,
        &BackboneDelta::default(),
        &linear,
        &meta(&["a", "b", "c"], TrainOptions::default()),
    )
    .unwrap();
    check("head_linear", &bytes);

    // Pixel input: the same logits from the raw 0..255 values.
    let input = golden_input(&read(GOLDEN));
    let pixels: Vec<f32> = input.iter().map(|x| x * 128.0 + 127.0).collect();
    let onnx = model_onnx(&bytes, OnnxInput::Pixels).unwrap();
    let (from_pixels, _) = tract_run(&onnx, &pixels);
    let (want, _) = rust_run(&bytes, &input);
    assert!(max_abs_diff(&from_pixels, &want) < TOLERANCE);

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
    check("head_mlp", &bytes);
}

/// A model fine-tuned for one epoch of a few steps on the job tests' small dataset.
fn fine_tuned(finetune: FinetuneChoice) -> Trained {
    let device = Device::flex();
    let model = load_efficientnet(&read(SHIPPED), &device).unwrap();
    let options = TrainOptions {
        epochs: 1,
        val_fraction: 0.34,
        batch_size: 2,
        finetune,
        ..TrainOptions::default()
    };
    trained(&model, options)
}

#[test]
fn lora_and_last_blocks_fine_tunes_match() {
    let shipped = read(SHIPPED);
    for (name, choice, mode) in [
        (
            "lora",
            FinetuneChoice::Lora {
                blocks: 2,
                rank: 4,
                alpha: 4.0,
            },
            RunMode::Lora,
        ),
        (
            "last_blocks",
            FinetuneChoice::LastBlocks { blocks: 1 },
            RunMode::LastBlocks,
        ),
    ] {
        let trained = fine_tuned(choice);
        assert_eq!(trained.report.mode, mode);
        assert!(!trained.delta.convs.is_empty(), "{name}: nothing fine-tuned");
        let meta = ExportMetadata::from_report(&trained.report);
        let bytes = merged_model_safetensors(&shipped, &trained.delta, &trained.head, &meta).unwrap();
        // The fine-tune must show in the logits, or this test would not be checking the merged convs.
        let plain = merged_model_safetensors(&shipped, &BackboneDelta::default(), &trained.head, &meta).unwrap();
        let input = golden_input(&read(GOLDEN));
        let moved = max_abs_diff(&rust_run(&bytes, &input).0, &rust_run(&plain, &input).0);
        assert!(
            moved > 1e-3,
            "{name}: the fine-tune barely changes the logits ({moved})"
        );
        check(name, &bytes);
    }
}

#[test]
fn onnx_starts_with_the_model_fields_and_names_its_opset() {
    let onnx = model_onnx(&read(SHIPPED), OnnxInput::Preprocessed).unwrap();
    // ModelProto field 1 (ir_version, varint) = 7, then field 2 (producer_name) = "ajuste".
    assert_eq!(&onnx[..2], &[0x08, 7]);
    assert_eq!(&onnx[2..10], b"\x12\x06ajuste");
    // Weights are stored as raw f32: the file holds the 4.6 M parameters left once the BN is folded.
    assert!(onnx.len() > 4 * 4_500_000, "{} bytes", onnx.len());
    let err = model_onnx(b"not a model", OnnxInput::Preprocessed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("safetensors"), "{err}");
}
