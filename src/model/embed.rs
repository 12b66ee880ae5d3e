//! Running the backbone on preprocessed images and reading results back.
//!
//! Reads go through the async APIs only (`into_data_async`, `Transaction::execute_async`): a synchronous
//! read panics in the browser, and the same code runs natively (awaited with a tiny executor).

use burn::tensor::{DType, Device, Int, Tensor, TensorData, Transaction};

use super::EfficientNetLite0;
use crate::preprocess::{IMAGE_SIZE, normalize_batch};

/// Preprocessed 224x224x3 HWC u8 images → the normalised NCHW input tensor. Off the CPU the bytes travel as they
/// are and the GPU normalises them: a quarter of the upload, which on an H200 had been most of a batch.
pub fn input_tensor(images: &[&[u8]], device: &Device) -> Tensor<4> {
    let whole = images.iter().all(|i| i.len() == IMAGE_SIZE * IMAGE_SIZE * 3);
    if whole && !images.is_empty() && device.clone().without_autodiff() != Device::flex() {
        return input_tensor_packed(images, device);
    }
    let data = normalize_batch(images);
    Tensor::from_data(TensorData::new(data, [images.len(), 3, IMAGE_SIZE, IMAGE_SIZE]), device)
}

/// [`input_tensor`] of whole 224×224×3 images from their bytes packed four to an `i32` (WebGPU has no 8-bit
/// integers), unpacked, reordered to NCHW and normalised as `normalize_hwc` does, `(u8 - 127) / 128`: exact in
/// f32, so both paths give the same input bit for bit.
pub fn input_tensor_packed(images: &[&[u8]], device: &Device) -> Tensor<4> {
    let n = images.len();
    // The bytes as they are, read as little-endian `i32` words: no per-word work on the host (every target we
    // build for is little-endian).
    let bytes = images.concat();
    let per_image = bytes.len() / 4 / n;
    let words = TensorData::from_bytes_vec(bytes, [n, per_image], DType::I32);
    let packed = Tensor::<2, Int>::from_data(words, device).unsqueeze_dim::<3>(2);
    // Byte k of each little-endian word, in order (one shift by [0, 8, 16, 24] broadcast over the words); the
    // arithmetic shift's sign bits are masked off.
    let shifts = Tensor::<3, Int>::from_data(TensorData::new(vec![0i32, 8, 16, 24], [1, 1, 4]), device);
    let hwc = packed
        .bitwise_right_shift(shifts)
        .bitwise_and_scalar(255)
        .reshape([n, IMAGE_SIZE, IMAGE_SIZE, 3])
        .float();
    (hwc.permute([0, 3, 1, 2]) - 127.0) / 128.0
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed upload (what the GPU gets) gives the CPU path's input exactly, every byte value included.
    #[test]
    fn packed_input_equals_the_normalised_one() {
        let size = IMAGE_SIZE * IMAGE_SIZE * 3;
        let a: Vec<u8> = (0..size).map(|i| (i * 31 % 256) as u8).collect();
        let b: Vec<u8> = (0..size).map(|i| 255 - (i * 7 % 256) as u8).collect();
        let images = [a.as_slice(), b.as_slice()];
        let device = Device::flex();
        let packed = input_tensor_packed(&images, &device);
        let expected = Tensor::<4>::from_data(TensorData::new(normalize_batch(&images), [2, 3, 224, 224]), &device);
        assert_eq!(packed.dims(), [2, 3, 224, 224]);
        let packed = packed.into_data().try_to_vec::<f32>().unwrap();
        let expected = expected.into_data().try_to_vec::<f32>().unwrap();
        let differing = packed.iter().zip(&expected).filter(|(p, e)| p != e).count();
        assert_eq!(differing, 0, "first values {:?} vs {:?}", &packed[..6], &expected[..6]);
    }
}
