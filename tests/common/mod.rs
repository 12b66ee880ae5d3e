//! Shared by the native and the in-browser golden tests: runs the network on the four golden inputs and
//! measures how far it is from the PyTorch reference run on the same shipped weights
//! (`tests/fixtures/golden_shipped.safetensors`, made by `scripts/make_goldens.py`).
#![allow(dead_code)]

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod config;
pub mod job_host;
pub mod lora_steps;
#[cfg(not(target_arch = "wasm32"))]
pub mod tflite_int8;

use ajuste::floats::max_abs_diff;
use ajuste::model::{EfficientNetLite0, TensorFile};
use burn::tensor::{Device, Tensor, TensorData, Transaction};

pub const GOLDEN_INPUTS: usize = 4;
/// Expected ImageNet top-1 per golden input (tests/fixtures/README.md).
pub const EXPECTED_TOP1: [usize; 4] = [818, 21, 285, 967];

#[derive(Debug, Default)]
pub struct GoldenReport {
    pub embedding_max_diff: f32,
    pub logits_max_diff: f32,
    /// (name, max |diff| of the per-channel spatial means), for the stem and each block.
    pub chmean_max_diff: Vec<(String, f32)>,
    pub top1: Vec<usize>,
}

impl GoldenReport {
    /// Every per-block channel mean, the embedding and the logits within `tol`, and the expected top-1.
    pub fn assert_within(&self, tol: f32) {
        for (name, diff) in &self.chmean_max_diff {
            assert!(*diff < tol, "{name}: channel means differ by {diff} (tolerance {tol})");
        }
        assert!(
            self.embedding_max_diff < tol,
            "embedding differs by {} (tolerance {tol})",
            self.embedding_max_diff
        );
        assert!(
            self.logits_max_diff < tol,
            "logits differ by {} (tolerance {tol})",
            self.logits_max_diff
        );
        assert_eq!(self.top1, EXPECTED_TOP1);
    }
}

/// The golden inputs as the model takes them, `(u8 - 127) / 128` in NCHW, rebuilt from the stored bytes
/// (`input_u8_hwc`, NHWC): exact in f32, so bit for bit the input the reference was given.
pub fn golden_input(golden_bytes: &[u8]) -> Vec<f32> {
    let file = safetensors::SafeTensors::deserialize(golden_bytes).expect("golden file parses");
    let view = file.tensor("input_u8_hwc").expect("golden input_u8_hwc");
    assert_eq!(view.dtype(), safetensors::Dtype::U8);
    assert_eq!(view.shape(), [GOLDEN_INPUTS, 224, 224, 3]);
    let hwc = view.data();
    let plane = 224 * 224;
    let mut x = vec![0.0; hwc.len()];
    for (i, &v) in hwc.iter().enumerate() {
        let (n, pixel, c) = (i / (3 * plane), i / 3 % plane, i % 3);
        x[(n * 3 + c) * plane + pixel] = (v as f32 - 127.0) / 128.0;
    }
    x
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |a, (i, &v)| if v > a.1 { (i, v) } else { a })
        .0
}

fn channel_mean(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

/// Runs the golden inputs through `model` on `device`, reading everything back asynchronously in one
/// transaction (the only kind of read the browser allows).
pub async fn run_goldens(model: &EfficientNetLite0, golden_bytes: &[u8], device: &Device) -> GoldenReport {
    let golden = TensorFile::parse(golden_bytes).expect("golden file parses");
    let input = golden_input(golden_bytes);
    let x = Tensor::<4>::from_data(TensorData::new(input, [GOLDEN_INPUTS, 3, 224, 224]), device);

    let mut tx = Transaction::default();
    let mut names = vec!["stem".to_string()];
    let mut h = model.stem(x);
    tx = tx.register(channel_mean(h.clone()));
    for i in 0..model.blocks.len() {
        h = model.blocks(h, i, i + 1);
        tx = tx.register(channel_mean(h.clone()));
        names.push(format!("block{i}"));
    }
    let embedding = model.pool(h);
    let logits = model.classifier.forward(embedding.clone());
    let data = tx
        .register(embedding)
        .register(logits)
        .execute_async()
        .await
        .expect("async read-back");

    let mut report = GoldenReport::default();
    for (name, d) in names.iter().zip(&data) {
        let got = d.try_to_vec::<f32>().expect("f32");
        let c = got.len() / GOLDEN_INPUTS;
        let want = golden
            .f32(&format!("debug.{name}_chmean"), &[GOLDEN_INPUTS, c])
            .expect("golden chmean");
        report.chmean_max_diff.push((name.clone(), max_abs_diff(&got, &want)));
    }
    let got_emb = data[names.len()].try_to_vec::<f32>().expect("f32");
    let got_logits = data[names.len() + 1].try_to_vec::<f32>().expect("f32");
    let want_emb = golden
        .f32("embedding", &[GOLDEN_INPUTS, 1280])
        .expect("golden embedding");
    let want_logits = golden.f32("logits", &[GOLDEN_INPUTS, 1000]).expect("golden logits");
    report.embedding_max_diff = max_abs_diff(&got_emb, &want_emb);
    report.logits_max_diff = max_abs_diff(&got_logits, &want_logits);
    report.top1 = got_logits.chunks(1000).map(argmax).collect();
    report
}
