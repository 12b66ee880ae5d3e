//! The LoRA adapter alone, in the layout Hugging Face PEFT saves for LoRA on `nn.Conv2d` (learnt from PEFT's
//! `utils/save_and_load.py` `get_peft_model_state_dict`, `tuners/lora/layer.py` `_ConvNd.update_layer` and
//! `utils/other.py` `ModulesToSaveWrapper`, v0.20), targeting timm's `tf_efficientnet_lite0`:
//!
//! - `adapter_model.safetensors`: `base_model.model.{module}.lora_A.weight` `[r, c_in, 1, 1]` and
//!   `base_model.model.{module}.lora_B.weight` `[c_out, r, 1, 1]` per adapted 1×1 conv (the adapter name is not
//!   in saved keys), and the new head as `modules_to_save` (`base_model.model.classifier.{weight,bias}`);
//! - `adapter_config.json`: `peft_type` "LORA", `r`, `lora_alpha` (PEFT's scaling is `lora_alpha / r`),
//!   `target_modules` (full timm module names), `modules_to_save` ["classifier"], `task_type` null, …
//!
//! timm keeps BN after each conv, so BN(conv(x) + scale·B'A x) must equal our folded `W·s x + scale·B A x + bias`:
//! hence B' = B/s per out channel, A unchanged. `PeftModel.from_pretrained(timm_model, folder)` reads the weights
//! from a file named `adapter_model.safetensors` next to `adapter_config.json` (the app may offer it for download
//! as `adapter.safetensors`; it must be renamed back for PEFT).
//!
//! A `Full` delta (unfrozen blocks) is not low-rank and has no PEFT LoRA form: `peft_adapter` returns an error
//! for it (and for a head-only model, or an MLP head, which timm's single-`Linear` classifier cannot hold); the
//! merged `model.safetensors` is the export for those.

use std::collections::HashMap;

use serde_json::json;

use super::merge::{bn_scale, check_lora};
use super::{ExportError, ExportMetadata, write};
use crate::head::{Head, NamedTensor};
use crate::model::{BLOCKS, BackboneDelta, ConvUpdate, TensorFile};

/// timm's model name the adapter targets (`timm.create_model(BASE_MODEL, num_classes=K)`).
pub const BASE_MODEL: &str = "timm/tf_efficientnet_lite0.in1k";
/// Blocks per stage of EfficientNet-Lite0, as timm nests them (`blocks.{stage}.{index}`).
const STAGES: [usize; 7] = [1, 2, 2, 3, 3, 4, 1];

/// The adapter's two files.
#[derive(Debug, Clone, PartialEq)]
pub struct PeftAdapter {
    /// `adapter_model.safetensors`.
    pub safetensors: Vec<u8>,
    /// `adapter_config.json`.
    pub config_json: String,
}

/// timm's module name for a clean conv name (`blocks.12.project.conv` → `blocks.5.1.conv_pwl`).
pub fn timm_module_name(clean: &str) -> Result<String, ExportError> {
    let unknown = || ExportError::Delta(format!("`{clean}` has no timm tf_efficientnet_lite0 name"));
    match clean {
        "stem.conv" => return Ok("conv_stem".into()),
        "head.conv" => return Ok("conv_head".into()),
        _ => {}
    }
    let rest = clean.strip_prefix("blocks.").ok_or_else(unknown)?;
    let (index, part) = rest.split_once('.').ok_or_else(unknown)?;
    let i: usize = index.parse().map_err(|_| unknown())?;
    if i >= BLOCKS.len() {
        return Err(unknown());
    }
    let (stage, j) = STAGES
        .iter()
        .enumerate()
        .flat_map(|(s, &n)| (0..n).map(move |j| (s, j)))
        .nth(i)
        .ok_or_else(unknown)?;
    // Block 0 has no expansion: timm calls its projection `conv_pw` (a DepthwiseSeparableConv).
    let module = match (part, i) {
        ("dw.conv", _) => "conv_dw",
        ("project.conv", 0) => "conv_pw",
        ("expand.conv", 1..) => "conv_pw",
        ("project.conv", _) => "conv_pwl",
        _ => return Err(unknown()),
    };
    Ok(format!("blocks.{stage}.{j}.{module}"))
}

/// The PEFT LoRA adapter for `delta` (every conv a `Lora` update of one shared rank and scale) and the head.
pub fn peft_adapter(
    backbone: &[u8],
    delta: &BackboneDelta,
    head: &Head,
    meta: &ExportMetadata,
) -> Result<PeftAdapter, ExportError> {
    if head.hidden.is_some() {
        return Err(ExportError::Delta(
            "a PEFT adapter needs a linear head (timm's classifier is one Linear); use model.safetensors".into(),
        ));
    }
    let first = delta.convs.first().ok_or_else(|| {
        ExportError::Delta("no backbone change to adapt (a head-only model): use model.safetensors".into())
    })?;
    let (rank, scale) = match first.update {
        ConvUpdate::Lora { rank, scale, .. } => (rank, scale),
        ConvUpdate::Full { .. } => return Err(full_error(&first.name)),
    };
    let file = TensorFile::parse(backbone)?;
    let mut tensors = Vec::new();
    let mut targets = Vec::new();
    for conv in &delta.convs {
        let ConvUpdate::Lora {
            a,
            b,
            rank: r,
            scale: sc,
        } = &conv.update
        else {
            return Err(full_error(&conv.name));
        };
        if (*r, *sc) != (rank, scale) {
            return Err(ExportError::Delta(format!(
                "`{}` has rank {r} and scale {sc}, others rank {rank} and scale {scale}: \
                 one adapter needs one rank and scale",
                conv.name
            )));
        }
        check_lora(conv, a, b, rank)?;
        let [c_out, c_in, _, _] = conv.shape;
        let found = file
            .shape(&format!("{}.weight", conv.name))
            .map_err(|_| ExportError::Delta(format!("the backbone has no conv `{}`", conv.name)))?;
        if found != conv.shape {
            return Err(ExportError::Delta(format!(
                "`{}` has shape {found:?} in the backbone but the delta says {:?}",
                conv.name, conv.shape
            )));
        }
        let prefix = conv.name.trim_end_matches(".conv");
        let s = bn_scale(&file, prefix, c_out)?;
        let module = timm_module_name(&conv.name)?;
        if targets.contains(&module) {
            return Err(ExportError::Delta(format!("`{}` is changed twice", conv.name)));
        }
        let b_unfolded = b
            .chunks_exact(rank)
            .zip(&s)
            .flat_map(|(row, &so)| row.iter().map(move |&v| (v as f64 / so) as f32))
            .collect();
        tensors.push(NamedTensor {
            name: format!("base_model.model.{module}.lora_A.weight"),
            shape: vec![rank, c_in, 1, 1],
            data: a.clone(),
        });
        tensors.push(NamedTensor {
            name: format!("base_model.model.{module}.lora_B.weight"),
            shape: vec![c_out, rank, 1, 1],
            data: b_unfolded,
        });
        targets.push(module);
    }
    for t in head.tensors() {
        tensors.push(NamedTensor {
            name: format!("base_model.model.{}", t.name),
            ..t
        });
    }
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "labels".to_string(),
            serde_json::to_string(&meta.labels).unwrap_or_default(),
        ),
    ]);
    let config = json!({
        "peft_type": "LORA",
        "task_type": null,
        "base_model_name_or_path": BASE_MODEL,
        "revision": null,
        "inference_mode": true,
        "r": rank,
        "lora_alpha": scale * rank as f32,
        "lora_dropout": 0.0,
        "target_modules": targets,
        "modules_to_save": ["classifier"],
        "fan_in_fan_out": false,
        "bias": "none",
        "use_rslora": false,
        "init_lora_weights": true,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
    });
    Ok(PeftAdapter {
        safetensors: write(&tensors, metadata)?,
        config_json: serde_json::to_string_pretty(&config).unwrap_or_default(),
    })
}

fn full_error(name: &str) -> ExportError {
    ExportError::Delta(format!(
        "`{name}` was trained in full (unfrozen blocks), which has no LoRA adapter form: use model.safetensors"
    ))
}

#[cfg(test)]
mod tests {
    use super::timm_module_name;

    #[test]
    fn timm_module_names_follow_the_readme_mapping() {
        for (clean, timm) in [
            ("blocks.0.project.conv", "blocks.0.0.conv_pw"),
            ("blocks.0.dw.conv", "blocks.0.0.conv_dw"),
            ("blocks.1.expand.conv", "blocks.1.0.conv_pw"),
            ("blocks.2.project.conv", "blocks.1.1.conv_pwl"),
            ("blocks.12.project.conv", "blocks.5.1.conv_pwl"),
            ("blocks.14.expand.conv", "blocks.5.3.conv_pw"),
            ("blocks.15.project.conv", "blocks.6.0.conv_pwl"),
            ("head.conv", "conv_head"),
        ] {
            assert_eq!(timm_module_name(clean).unwrap(), timm, "{clean}");
        }
        for bad in [
            "blocks.0.expand.conv",
            "blocks.16.project.conv",
            "blocks.x.dw.conv",
            "head.bn",
        ] {
            assert!(timm_module_name(bad).is_err(), "{bad}");
        }
    }
}
