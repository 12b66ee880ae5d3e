//! Calibration for the int8 model: the float network run on the burn device given (the worker's, in a
//! browser), in the model's own kernels, over a few of the user's prepared training images, recording the
//! smallest and largest value of every activation the TFLite graph has, in the plan's order (`tflite::plan`).
//! Each batch's ranges are read back in one asynchronous read; nothing blocks (it runs in the browser worker).

use burn::tensor::{Device, Tensor};

use super::calibration_subset;
use super::quant::Ranges;
use crate::model::depthwise::{depthwise_relu6, depthwise_relu6_nhwc};
use crate::model::embed::input_tensor;
use crate::model::lora::{
    channels_last, conv_rows, conv_rows_relu6, conv_with_lora, conv_with_lora_relu6, dense, to_nchw, to_nhwc,
};
use crate::model::{EfficientNetLite0, MbConv};

/// Images per forward pass.
const BATCH: usize = 8;

/// The min and max of each activation (as two `[1]` tensors, read back together once per batch).
struct Recorder {
    stats: Vec<Tensor<1>>,
}

impl Recorder {
    fn record<const D: usize>(&mut self, x: &Tensor<D>) {
        self.stats.push(x.clone().min());
        self.stats.push(x.clone().max());
    }
}

fn block(b: &MbConv, x: Tensor<4>, r: &mut Recorder) -> Tensor<4> {
    if channels_last(&x) {
        let x = to_nhwc(x);
        let mut h = x.clone();
        if let Some(conv) = &b.expand {
            h = conv_rows_relu6(conv, b.expand_lora.as_ref(), h);
            r.record(&h);
        }
        h = depthwise_relu6_nhwc(&b.dw, h);
        r.record(&h);
        h = conv_rows(&b.project, b.project_lora.as_ref(), h);
        r.record(&h);
        if b.residual {
            h = x + h;
            r.record(&h);
        }
        return to_nchw(h);
    }
    let mut h = x.clone();
    if let Some(conv) = &b.expand {
        h = conv_with_lora_relu6(conv, b.expand_lora.as_ref(), h);
        r.record(&h);
    }
    h = depthwise_relu6(&b.dw, h);
    r.record(&h);
    h = conv_with_lora(&b.project, b.project_lora.as_ref(), h);
    r.record(&h);
    if b.residual {
        h = x + h;
        r.record(&h);
    }
    h
}

/// Every activation's range over `images[calibration_subset(..)]` (each a prepared 224×224×3 RGB image), the
/// network built from the `model.safetensors` being exported. `progress(done, total)` after each batch.
pub async fn calibrate(
    model: &EfficientNetLite0,
    images: &[&[u8]],
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Ranges, String> {
    let chosen: Vec<&[u8]> = calibration_subset(images.len())
        .into_iter()
        .map(|i| images[i])
        .collect();
    if chosen.is_empty() {
        return Err("no images to calibrate the int8 model on".into());
    }
    let (mut min, mut max): (Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new());
    for (done, batch) in chosen.chunks(BATCH).enumerate() {
        let mut r = Recorder { stats: Vec::new() };
        let x = input_tensor(batch, device);
        r.record(&x);
        let mut x = model.stem(x);
        r.record(&x);
        for b in &model.blocks {
            x = block(b, x, &mut r);
        }
        let lora = model.head_lora.as_ref();
        let embedding = if channels_last(&x) {
            let h = conv_rows_relu6(&model.head, lora, to_nhwc(x));
            r.record(&h);
            let [n, hh, ww, c] = h.dims();
            h.reshape([n, hh * ww, c]).mean_dim(1).reshape([n, c])
        } else {
            let h = conv_with_lora_relu6(&model.head, lora, x);
            r.record(&h);
            let [n, c, hh, ww] = h.dims();
            h.reshape([n, c, hh * ww]).mean_dim(2).reshape([n, c])
        };
        r.record(&embedding);
        let mut y = embedding;
        if let Some(hidden) = &model.classifier.hidden {
            y = burn::tensor::activation::relu(dense(hidden, y));
            r.record(&y);
        }
        y = dense(&model.classifier.out, y);
        r.record(&y);
        let values = Tensor::cat(r.stats, 0)
            .into_data_async()
            .await
            .map_err(|e| format!("reading the calibration ranges: {e:?}"))?
            .try_to_vec::<f32>()
            .map_err(|e| format!("reading the calibration ranges: {e:?}"))?;
        if min.is_empty() {
            min = vec![f32::INFINITY; values.len() / 2];
            max = vec![f32::NEG_INFINITY; values.len() / 2];
        }
        for (i, pair) in values.chunks(2).enumerate() {
            min[i] = min[i].min(pair[0]);
            max[i] = max[i].max(pair[1]);
        }
        progress((done * BATCH + batch.len()).min(chosen.len()), chosen.len());
    }
    if let Some(bad) = min.iter().chain(&max).find(|v| !v.is_finite()) {
        return Err(format!("an activation is not finite during calibration ({bad})"));
    }
    Ok(Ranges {
        min,
        max,
        images: chosen.len(),
    })
}
