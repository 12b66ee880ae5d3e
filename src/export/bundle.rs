//! The download bundle: one zip with every format of the kept model and its card.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{
    ExportError, ExportMetadata, OnnxInput, config_json_of, labels_txt, merged_model_safetensors, model_card,
    model_onnx, peft_adapter,
};
use crate::train::{RunMode, Trained};

/// The files of the bundle (name, bytes) for a kept model on the shipped `backbone`: `model.safetensors`,
/// `model.onnx`, `config.json`, `labels.txt`, the PEFT adapter when the model is LoRA, and `README.md`.
pub fn bundle_files(
    backbone: &[u8],
    trained: &Trained,
    image_counts: Option<&[usize]>,
) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    let Trained { head, delta, report } = trained;
    let meta = ExportMetadata::from_report(report);
    let model = merged_model_safetensors(backbone, delta, head, &meta)?;
    let onnx = model_onnx(&model, OnnxInput::Preprocessed)?;
    let config = config_json_of(report);
    let mut files = vec![
        ("model.safetensors".to_string(), model),
        ("model.onnx".into(), onnx),
        ("config.json".into(), config.into_bytes()),
        ("labels.txt".into(), labels_txt(&meta.labels).into_bytes()),
    ];
    if report.mode == RunMode::Lora {
        let adapter = peft_adapter(backbone, delta, head, &meta)?;
        files.push(("adapter_model.safetensors".into(), adapter.safetensors));
        files.push(("adapter_config.json".into(), adapter.config_json.into_bytes()));
    }
    files.push(("README.md".into(), model_card(report, image_counts).into_bytes()));
    Ok(files)
}

/// The bundle as a zip (deflated), every file at its top level.
pub fn bundle_zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ExportError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(false);
    let fail = |name: &str, e: &dyn std::fmt::Display| ExportError::Write(format!("{name} in the zip: {e}"));
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options).map_err(|e| fail(name, &e))?;
        zip.write_all(bytes).map_err(|e| fail(name, &e))?;
    }
    let cursor = zip.finish().map_err(|e| fail("the end", &e))?;
    Ok(cursor.into_inner())
}
