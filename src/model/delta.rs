//! What fine-tuning changed in the pretrained backbone, per conv and in clean names, for the export.
//!
//! Everything is in the BN-folded space the model runs in (see `weights.rs`): a `Full` update replaces the
//! folded weight and bias; a `Lora` update adds `scale · B·A` to the folded weight (the bias is unchanged).

/// A trained change to one conv of the pretrained backbone, in the BN-folded space the model runs in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ConvUpdate {
    /// The trained folded weight `[c_out·c_in·kh·kw]` and folded bias `[c_out]`, row-major.
    Full {
        #[serde(with = "crate::floats")]
        weight: Vec<f32>,
        #[serde(with = "crate::floats")]
        bias: Vec<f32>,
    },
    /// `a` is `[rank·c_in]` and `b` is `[c_out·rank]`, row-major; the weight change is `scale · b·a`.
    Lora {
        #[serde(with = "crate::floats")]
        a: Vec<f32>,
        #[serde(with = "crate::floats")]
        b: Vec<f32>,
        rank: usize,
        scale: f32,
    },
}

/// One changed conv: its clean name (e.g. `"blocks.12.project.conv"`, `"head.conv"`) and weight shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvDelta {
    pub name: String,
    /// `[c_out, c_in/groups, kh, kw]`.
    pub shape: [usize; 4],
    pub update: ConvUpdate,
}

/// Every conv that fine-tuning changed; empty for a head-only model.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct BackboneDelta {
    pub convs: Vec<ConvDelta>,
}
