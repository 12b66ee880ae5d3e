//! Where one block's time goes on the page's WebGPU adapter, operation by operation (`?ops=` blocks, `?opbatch=`
//! batches): the 1×1 convs (and their bare matrix products, with the weight as a transposed view and copied
//! contiguous), the depthwise conv, an element-wise op on the widest tensor, and the whole block. Each operation
//! runs `?reps=` times (20) queued before one read-back (ms per run) and once with its own read-back.

use ajuste::model::EfficientNetLite0;
use ajuste::model::depthwise::depthwise_relu6_nhwc;
use ajuste::model::embed::input_tensor;
use ajuste::model::lora::{conv_rows, conv_rows_direct, conv_rows_relu6, to_nchw, to_nhwc};
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu6;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::{now, print, query_list, sync};

/// (ms per run with `?reps=` queued, ms of one run read back).
/// One operation under test, run again on every call.
type Op<'a> = Box<dyn Fn() -> Tensor<4> + 'a>;

async fn op_ms(op: &dyn Fn() -> Tensor<4>) -> (f64, f64) {
    let reps = query_list("reps", &[20])[0];
    sync(&op()).await;
    let t0 = now();
    let outs: Vec<_> = (0..reps).map(|_| op()).collect();
    sync(outs.last().unwrap()).await;
    let queued = (now() - t0) / reps as f64;
    let t0 = now();
    sync(&op()).await;
    (queued, now() - t0)
}

/// `[rows, c_in] · w[c_out, c_in]ᵀ` as `[1, 1, rows, c_out]`.
fn product(x: &Tensor<4>, w: &Tensor<2>) -> Tensor<4> {
    let [n, h, ww, c] = x.dims();
    let y = x.clone().reshape([n * h * ww, c]).matmul(w.clone().transpose());
    let [r, o] = y.dims();
    y.reshape([1, 1, r, o])
}

/// A 1×1 conv on channels-last `x` through burn's direct conv kernel (`conv_rows_direct`, training's form in a
/// browser) instead of our kernel.
fn direct_1x1(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv_rows_direct(weight_2d(conv), conv.bias.as_ref().map(|b| b.val()), x)
}

/// A 1×1 conv on channels-last input, channels-last out.
type Conv1x1 = fn(&Conv2d, Tensor<4>) -> Tensor<4>;

/// The embedding with every 1×1 conv computed by `conv`.
fn embed_with(model: &EfficientNetLite0, input: Tensor<4>, conv: Conv1x1) -> Tensor<2> {
    let mut x = to_nhwc(model.stem(input));
    for block in &model.blocks {
        let h = match &block.expand {
            Some(c) => relu6(conv(c, x.clone())),
            None => x.clone(),
        };
        let h = conv(&block.project, depthwise_relu6_nhwc(&block.dw, h));
        x = if block.residual { x + h } else { h };
    }
    let h = relu6(conv(&model.head, x));
    let [n, hh, ww, c] = h.dims();
    h.reshape([n, hh * ww, c]).mean_dim(1).reshape([n, c])
}

/// A 1×1 conv as a matrix product of the pixel rows (what `conv_rows` runs natively).
fn product_1x1(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [n, h, w, _] = x.dims();
    let y = product(&x, &weight_2d(conv)) + conv.bias.as_ref().unwrap().val().reshape([1, 1, 1, -1]);
    y.reshape([n as i32, h as i32, w as i32, -1])
}

fn weight_2d(conv: &Conv2d) -> Tensor<2> {
    let [o, i, _, _] = conv.weight.dims();
    conv.weight.val().reshape([o, i])
}

/// The same numbers as `w`, in a buffer of their own (row-major), so no layout is left for the kernel to handle.
async fn copied(w: Tensor<2>, device: &Device) -> Tensor<2> {
    let data: TensorData = w.into_data_async().await.expect("read back");
    Tensor::from_data(data, device)
}

pub async fn bench_ops(model: &EfficientNetLite0, device: &Device, blocks: &[usize], batches: &[usize]) {
    if blocks.is_empty() {
        return;
    }
    print(String::new());
    print("| block, batch | operation | ms per run, queued | ms, one run read back |".into());
    print("|---|---|---:|---:|".into());
    let pixels = vec![100u8; 224 * 224 * 3];
    for &batch in batches {
        let images: Vec<&[u8]> = (0..batch).map(|_| pixels.as_slice()).collect();
        let input = input_tensor(&images, device);
        let shipped = model.embed(input.clone());
        let variants: [(&str, Conv1x1); 2] = [
            ("1×1 convs by burn's direct conv", direct_1x1),
            ("1×1 convs as burn's matrix products", product_1x1),
        ];
        let (ours, _) = op_ms(&|| model.embed(input.clone()).reshape([batch, 1, 1, 1280])).await;
        print(format!("| all, {batch} | the embedding as shipped | {ours:.2} | |"));
        for (name, conv) in variants {
            let (ms, _) = op_ms(&|| embed_with(model, input.clone(), conv).reshape([batch, 1, 1, 1280])).await;
            let gap = (shipped.clone() - embed_with(model, input.clone(), conv)).abs().max();
            let gap: f32 = gap
                .into_data_async()
                .await
                .expect("read back")
                .try_to_vec::<f32>()
                .unwrap()[0];
            print(format!(
                "| all, {batch} | the embedding, {name} (max gap to shipped {gap:.1e}) | {ms:.2} | |"
            ));
        }
        let stem = model.stem(input);
        for &b in blocks {
            let block = &model.blocks[b];
            let x = to_nhwc(model.blocks(stem.clone(), 0, b));
            let expand = block.expand.clone().expect("an expanding block");
            let h = conv_rows_relu6(&expand, None, x.clone());
            let d = depthwise_relu6_nhwc(&block.dw, h.clone());
            let (we, wp) = (weight_2d(&expand), weight_2d(&block.project));
            let (we_c, wp_c) = (copied(we.clone(), device).await, copied(wp.clone(), device).await);
            let options = conv_options(&block.dw);
            let [c, _, kh, kw] = block.dw.weight.dims();
            let dw_weight = block.dw.weight.val().reshape([c, kh, kw, 1]).permute([0, 3, 1, 2]);
            let ops: Vec<(&str, Op)> = vec![
                (
                    "expand 1×1 + bias + ReLU6 (as shipped)",
                    Box::new(|| conv_rows_relu6(&expand, None, x.clone())),
                ),
                (
                    "expand: product, weight as transposed view",
                    Box::new(|| product(&x, &we)),
                ),
                ("expand: product, weight copied", Box::new(|| product(&x, &we_c))),
                (
                    "expand: burn's direct conv",
                    Box::new(|| direct_1x1(&expand, x.clone())),
                ),
                (
                    "depthwise + bias + ReLU6",
                    Box::new(|| depthwise_relu6_nhwc(&block.dw, h.clone())),
                ),
                (
                    "depthwise: burn conv2d alone",
                    Box::new(|| conv2d(to_nchw(h.clone()), dw_weight.clone(), None, options.clone())),
                ),
                ("ReLU6 on the expanded tensor", Box::new(|| relu6(h.clone()))),
                (
                    "project 1×1 + bias (as shipped)",
                    Box::new(|| conv_rows(&block.project, None, d.clone())),
                ),
                (
                    "project: product, weight as transposed view",
                    Box::new(|| product(&d, &wp)),
                ),
                ("project: product, weight copied", Box::new(|| product(&d, &wp_c))),
                (
                    "project: burn's direct conv",
                    Box::new(|| direct_1x1(&block.project, d.clone())),
                ),
                ("the whole block", Box::new(|| block.forward_nhwc(x.clone()))),
            ];
            for (name, op) in &ops {
                let (queued, alone) = op_ms(op.as_ref()).await;
                print(format!("| {b}, {batch} | {name} | {queued:.2} | {alone:.2} |"));
            }
        }
    }
}

fn conv_options(conv: &Conv2d) -> ConvOptions<2> {
    let burn::nn::PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        panic!("the model's depthwise convs have explicit padding");
    };
    ConvOptions::new_with_padding(conv.stride, [(top, bottom), (left, right)], conv.dilation, conv.groups)
}
