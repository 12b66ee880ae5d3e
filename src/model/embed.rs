//! Running the backbone on preprocessed images and reading results back.
//!
//! Reads go through the async APIs only (`into_data_async`, `Transaction::execute_async`): a synchronous
//! read panics in the browser, and the same code runs natively (awaited with a tiny executor).

use burn::tensor::{Device, Tensor, TensorData, Transaction};

use super::EfficientNetLite0;
use crate::preprocess::{IMAGE_SIZE, normalize_batch};

/// Preprocessed 224x224x3 HWC u8 images → the normalised NCHW input tensor.
pub fn input_tensor(images: &[&[u8]], device: &Device) -> Tensor<4> {
    let data = normalize_batch(images);
    Tensor::from_data(TensorData::new(data, [images.len(), 3, IMAGE_SIZE, IMAGE_SIZE]), device)
}

fn to_f32(data: TensorData) -> Result<Vec<f32>, String> {
    data.try_to_vec::<f32>()
        .map_err(|e| format!("reading back a tensor: {e:?}"))
}

/// Embeddings [n,1280] (row-major) of a batch of preprocessed images.
pub async fn embed_batch(model: &EfficientNetLite0, images: &[&[u8]], device: &Device) -> Result<Vec<f32>, String> {
    let embedding = model.embed(input_tensor(images, device));
    let data = embedding
        .into_data_async()
        .await
        .map_err(|e| format!("reading embeddings: {e:?}"))?;
    to_f32(data)
}

/// Embeddings and logits of the same batch, read back in one transaction.
pub async fn embed_and_classify(model: &EfficientNetLite0, input: Tensor<4>) -> Result<(Vec<f32>, Vec<f32>), String> {
    let embedding = model.embed(input);
    let logits = model.classifier.forward(embedding.clone());
    let mut out = Transaction::default()
        .register(embedding)
        .register(logits)
        .execute_async()
        .await
        .map_err(|e| format!("reading embeddings and logits: {e:?}"))?
        .into_iter();
    let (Some(embedding), Some(logits)) = (out.next(), out.next()) else {
        return Err("the read-back transaction returned fewer tensors than registered".into());
    };
    Ok((to_f32(embedding)?, to_f32(logits)?))
}
