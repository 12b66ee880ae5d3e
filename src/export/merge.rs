//! Merging a fine-tuned backbone (`BackboneDelta`, in the BN-folded space the model trains in) back into the
//! unfolded layout of the shipped weights, so `model.safetensors` keeps its names and loads unchanged into the
//! reference PyTorch module and timm.
//!
//! The loader folds `s = γ/√(var+ε)`: folded W = W·s per out channel, folded bias = β − mean·s. Unfolding keeps
//! BN as shipped wherever it can, so tools that refold (or train on) the export see the original statistics:
//! - LoRA: W' = W + scale·(B·A)/s per out channel, BN unchanged;
//! - Full: W' = W_trained/s, β' = b_trained + mean·s (γ, mean, var unchanged), so BN(W'x) = W_trained·x + b_trained.
//!
//! Precision: the shipped convs are f16; the merge reads them as f32, computes in f64 and writes f32, so the
//! export adds no rounding beyond one f32 cast per value (the f16 grid of the pretrained weights is kept exactly
//! where nothing changed).

use std::collections::HashSet;

use super::ExportError;
use crate::head::NamedTensor;
use crate::model::tensor_file::BN_EPS;
use crate::model::{BackboneDelta, ConvDelta, ConvUpdate, TensorFile};

/// The BN prefix of a delta's conv (`blocks.12.project.conv` → `blocks.12.project`), checked against the file.
fn bn_prefix<'n>(file: &TensorFile, delta: &'n ConvDelta) -> Result<&'n str, ExportError> {
    let prefix = delta.name.strip_suffix(".conv").ok_or_else(|| {
        ExportError::Delta(format!(
            "`{}` is not a conv of the backbone (names end in `.conv`)",
            delta.name
        ))
    })?;
    let weight = format!("{}.weight", delta.name);
    let shape = file
        .shape(&weight)
        .map_err(|_| ExportError::Delta(format!("the backbone has no conv `{}`", delta.name)))?;
    if shape != delta.shape {
        return Err(ExportError::Delta(format!(
            "`{}` has shape {:?} in the backbone but the delta says {:?}",
            delta.name, shape, delta.shape
        )));
    }
    Ok(prefix)
}

/// The BN scale `s = γ/√(var+ε)` of a conv, in f64; an error where it is 0 (such a channel cannot be unfolded).
pub(crate) fn bn_scale(file: &TensorFile, prefix: &str, out: usize) -> Result<Vec<f64>, ExportError> {
    let gamma = file.f32(&format!("{prefix}.bn.weight"), &[out])?;
    let var = file.f32(&format!("{prefix}.bn.running_var"), &[out])?;
    let scale: Vec<f64> = gamma
        .iter()
        .zip(&var)
        .map(|(&g, &v)| g as f64 / (v as f64 + BN_EPS).sqrt())
        .collect();
    if let Some(o) = scale.iter().position(|s| *s == 0.0 || !s.is_finite()) {
        return Err(ExportError::Delta(format!(
            "`{prefix}.bn` has scale {} on channel {o}: the change cannot be unfolded",
            scale[o]
        )));
    }
    Ok(scale)
}

/// Checks a LoRA update's sizes against its conv (1×1, `a` [rank·c_in], `b` [c_out·rank]).
pub(crate) fn check_lora(delta: &ConvDelta, a: &[f32], b: &[f32], rank: usize) -> Result<(), ExportError> {
    let [c_out, c_in, kh, kw] = delta.shape;
    let problem = if (kh, kw) != (1, 1) {
        Some(format!("LoRA is for 1×1 convs, this one is {kh}×{kw}"))
    } else if rank == 0 {
        Some("rank 0".to_string())
    } else if a.len() != rank * c_in || b.len() != c_out * rank {
        Some(format!(
            "rank {rank} needs A of {} and B of {} values, got {} and {}",
            rank * c_in,
            c_out * rank,
            a.len(),
            b.len()
        ))
    } else {
        None
    };
    match problem {
        Some(p) => Err(ExportError::Delta(format!("`{}`: {p}", delta.name))),
        None => Ok(()),
    }
}

/// Unfolds one delta into `tensors` (the backbone's tensors by name, as f32).
fn apply(file: &TensorFile, delta: &ConvDelta, tensors: &mut [NamedTensor]) -> Result<(), ExportError> {
    let prefix = bn_prefix(file, delta)?;
    let c_out = delta.shape[0];
    let per_out: usize = delta.shape[1..].iter().product();
    let s = bn_scale(file, prefix, c_out)?;
    let find = |tensors: &[NamedTensor], name: &str| {
        tensors
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| ExportError::Delta(format!("the backbone has no tensor `{name}`")))
    };
    let w = find(tensors, &format!("{}.weight", delta.name))?;
    match &delta.update {
        ConvUpdate::Lora { a, b, rank, scale } => {
            check_lora(delta, a, b, *rank)?;
            let weight = &mut tensors[w].data;
            for o in 0..c_out {
                let b_row = &b[o * rank..(o + 1) * rank];
                for (i, value) in weight[o * per_out..(o + 1) * per_out].iter_mut().enumerate() {
                    let ba: f64 = b_row
                        .iter()
                        .enumerate()
                        .map(|(r, &bv)| bv as f64 * a[r * per_out + i] as f64)
                        .sum();
                    *value = (*value as f64 + *scale as f64 * ba / s[o]) as f32;
                }
            }
        }
        ConvUpdate::Full { weight, bias } => {
            if weight.len() != c_out * per_out || bias.len() != c_out {
                return Err(ExportError::Delta(format!(
                    "`{}`: a full update needs {} weights and {c_out} biases, got {} and {}",
                    delta.name,
                    c_out * per_out,
                    weight.len(),
                    bias.len()
                )));
            }
            let mean = file.f32(&format!("{prefix}.bn.running_mean"), &[c_out])?;
            for (o, (dst, src)) in tensors[w]
                .data
                .chunks_exact_mut(per_out)
                .zip(weight.chunks_exact(per_out))
                .enumerate()
            {
                for (d, &t) in dst.iter_mut().zip(src) {
                    *d = (t as f64 / s[o]) as f32;
                }
            }
            let beta = find(tensors, &format!("{prefix}.bn.bias"))?;
            for (o, value) in tensors[beta].data.iter_mut().enumerate() {
                *value = (bias[o] as f64 + mean[o] as f64 * s[o]) as f32;
            }
        }
    }
    Ok(())
}

/// Every tensor of the shipped backbone but its classifier, as f32, with `delta` merged in (unfolded).
pub fn merged_backbone(backbone: &[u8], delta: &BackboneDelta) -> Result<Vec<NamedTensor>, ExportError> {
    let file = TensorFile::parse(backbone)?;
    let mut tensors = Vec::new();
    for name in file.names() {
        if name.starts_with("classifier.") {
            continue;
        }
        let (shape, data) = file.f32_any_shape(&name)?;
        tensors.push(NamedTensor { name, shape, data });
    }
    let mut seen = HashSet::new();
    for conv in &delta.convs {
        if !seen.insert(conv.name.as_str()) {
            return Err(ExportError::Delta(format!("`{}` is changed twice", conv.name)));
        }
        apply(&file, conv, &mut tensors)?;
    }
    Ok(tensors)
}
