//! The pretrained backbone: EfficientNet-Lite0 as burn modules, its weight loader and ImageNet labels.

pub mod delta;
pub mod efficientnet;
pub mod embed;
pub mod imagenet;
pub mod lora;
pub mod weights;

pub use delta::{BackboneDelta, ConvDelta, ConvUpdate};
pub use efficientnet::{BLOCKS, BlockSpec, Classifier, EfficientNetLite0, EfficientNetLite0Config, MbConv};
pub use lora::{Lora, conv_with_lora};
pub use weights::{TensorFile, WeightsError, load_efficientnet};

/// Width of the embedding the head trains on.
pub const EMBEDDING_DIM: usize = 1280;
/// Classes of the pretrained ImageNet classifier.
pub const IMAGENET_CLASSES: usize = 1000;
