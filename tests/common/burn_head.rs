//! The head of `ajuste::train` (linear 1280→K, Adam, learning rate 1e-3, L2 weight decay 1e-4, batch 32,
//! validation loss and accuracy read back after every epoch for the charts) written with burn's autodiff and
//! optimizer instead. Only the benchmarks use it: they time it against our plain-Rust trainer on each device,
//! which is how the head's place (plain Rust on the CPU) was chosen.

use ajuste::rng::Rng;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData, Transaction};

/// Cached embeddings with a fixed train/validation split.
pub struct HeadData<'a> {
    pub features: &'a [f32],
    pub dim: usize,
    pub labels: &'a [usize],
    pub train: &'a [usize],
    pub val: &'a [usize],
    pub classes: usize,
}

fn rows(data: &HeadData, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let x: Vec<f32> = idx
        .iter()
        .flat_map(|&i| &data.features[i * data.dim..(i + 1) * data.dim])
        .copied()
        .collect();
    let y: Vec<i64> = idx.iter().map(|&i| data.labels[i] as i64).collect();
    (
        Tensor::from_data(TensorData::new(x, [idx.len(), data.dim]), device),
        Tensor::from_data(TensorData::new(y, [idx.len()]), device),
    )
}

/// Trains for `epochs` epochs on `device` (autodiff is added here); returns the last validation accuracy.
pub async fn train_linear_head(data: &HeadData<'_>, device: &Device, epochs: usize) -> f32 {
    let plain = device.clone();
    let device = plain.clone().autodiff();
    let mut head: Linear = LinearConfig::new(data.dim, data.classes).init(&device);
    let mut optimizer = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(1e-4)))
        .init();
    let loss = CrossEntropyLossConfig::new().init(&device);
    // Uploaded once, as the trainer keeps the embeddings in memory; batches are gathered on the device.
    let (x_train, y_train) = rows(data, data.train, &device);
    let (x_val, y_val) = rows(data, data.val, &plain);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let mut rng = Rng::new(0);
    let mut accuracy = 0.0;
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for batch in order.chunks(32) {
            let ids: Vec<i64> = batch.iter().map(|&i| i as i64).collect();
            let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [batch.len()]), &device);
            let x = x_train.clone().select(0, ids.clone());
            let y = y_train.clone().select(0, ids);
            let grads = loss.forward(head.forward(x), y).backward();
            head = optimizer.step(1e-3, head.clone(), GradientsParams::from_grads(grads, &head));
        }
        let valid = head.valid();
        let logits = valid.forward(x_val.clone());
        let val_loss = CrossEntropyLossConfig::new()
            .init(&plain)
            .forward(logits.clone(), y_val.clone());
        let correct = logits.argmax(1).squeeze_dim::<1>(1).equal(y_val.clone()).int().sum();
        let [_, correct] = Transaction::default()
            .register(val_loss)
            .register(correct)
            .execute_async()
            .await
            .expect("read back")
            .try_into()
            .expect("two tensors");
        accuracy = correct.convert::<i64>().try_to_vec::<i64>().unwrap()[0] as f32 / data.val.len() as f32;
    }
    accuracy
}
