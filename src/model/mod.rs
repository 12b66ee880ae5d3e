//! The pretrained backbone: EfficientNet-Lite0 as burn modules, its weight loader and ImageNet labels.
//! `tensor_file` (reading and checking a safetensors file) needs no burn; the rest needs the `ml` feature.

pub mod blocks;
pub mod delta;
#[cfg(feature = "ml")]
pub mod depthwise;
#[cfg(feature = "ml")]
pub mod efficientnet;
#[cfg(feature = "ml")]
pub mod embed;
#[cfg(feature = "ml")]
pub mod frozen;
pub mod imagenet;
#[cfg(feature = "ml")]
pub mod lora;
#[cfg(feature = "ml")]
pub mod pointwise;
pub mod tensor_file;
#[cfg(all(feature = "ml", target_arch = "wasm32"))]
pub mod tiled_1x1;
#[cfg(feature = "ml")]
pub mod weights;

pub use blocks::{BLOCKS, BlockSpec};
pub use delta::{BackboneDelta, ConvDelta, ConvUpdate};
#[cfg(feature = "ml")]
pub use efficientnet::{Classifier, EfficientNetLite0, EfficientNetLite0Config, MbConv};
#[cfg(feature = "ml")]
pub use lora::{Lora, conv_with_lora};
pub use tensor_file::{BackboneWeights, TensorFile, WeightsError, read_backbone};
#[cfg(feature = "ml")]
pub use weights::load_efficientnet;

/// Width of the embedding the head trains on.
pub const EMBEDDING_DIM: usize = 1280;
/// Classes of the pretrained ImageNet classifier.
pub const IMAGENET_CLASSES: usize = 1000;
