//! The TFLite model metadata (`metadata_schema.fbs` of TFLite Support / MediaPipe, file identifier `M001`,
//! stored in the buffer the model's `metadata` entry `TFLITE_METADATA` names) and the labels file it refers
//! to, packed after the model as an uncompressed zip, as TFLite's metadata writer packs associated files.
//!
//! What MediaPipe's ImageClassifier reads: the input's ImageProperties (RGB) and, for a float input, its
//! NormalizationOptions (mean 127, std 128: `(x - 127) / 128`, ours); the output's labels file
//! (TENSOR_AXIS_LABELS, one class name per line in output order), so that results carry the class names; and,
//! when given, the "none of these" threshold as the output's ScoreThresholdingOptions, MediaPipe's default score
//! threshold: below it the classifier gives no class.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::flatbuf::{Builder, Field, Pos};
use super::graph::Graph;
use crate::export::ExportError;

/// The name of the labels file inside the model (and in the metadata).
pub const LABELS_FILE: &str = "labels.txt";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// float32 `(u8 - 127) / 128`.
    Float,
    /// uint8 pixels (quantised: scale 1/128, zero point 127, the same values).
    Uint8,
}

/// ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3, author 4, license 5,
/// associated_files 6, min_parser_version 7. SubGraphMetadata: name 0, description 1, input_tensor_metadata 2,
/// output_tensor_metadata 3. TensorMetadata: name 0, description 1, dimension_names 2, content 3,
/// process_units 4, stats 5, associated_files 6. Content: content_properties (type 0, value 1), range 2.
fn metadata_bytes(classes: usize, input: Input, none_of_these: Option<f32>) -> Vec<u8> {
    let mut b = Builder::new();
    // The input: an RGB image (ImageProperties, union member 2; color_space RGB = 1).
    let image = b.table(&[Field::U8(0, 1)]);
    let content = b.table(&[Field::U8(0, 2), Field::Offset(1, image)]);
    let mut fields = vec![Field::Offset(3, content)];
    let (name, description) = match input {
        Input::Float => (
            "image",
            "RGB image 224x224 (upright, alpha over white, centre square crop, bicubic resize), \
             as float32 (u8 - 127) / 128, NHWC",
        ),
        Input::Uint8 => (
            "image",
            "RGB image 224x224 (upright, alpha over white, centre square crop, bicubic resize), \
             as uint8 pixels (quantised: scale 1/128, zero point 127, i.e. (u8 - 127) / 128), NHWC",
        ),
    };
    if input == Input::Float {
        // NormalizationOptions (ProcessUnitOptions member 1): mean 0, std 1.
        let mean = b.vector_f32(&[127.0]);
        let std = b.vector_f32(&[128.0]);
        let norm = b.table(&[Field::Offset(0, mean), Field::Offset(1, std)]);
        let unit = b.table(&[Field::U8(0, 1), Field::Offset(1, norm)]);
        fields.push(Field::Offset(4, b.vector_offsets(&[unit])));
    }
    let input_meta = tensor_meta(&mut b, name, description, fields);

    // The output: a feature vector (FeatureProperties, member 1) of probabilities, with its labels.
    let feature = b.table(&[]);
    let content = b.table(&[Field::U8(0, 1), Field::Offset(1, feature)]);
    let max = b.vector_f32(&[1.0]);
    let min = b.vector_f32(&[0.0]);
    let stats = b.table(&[Field::Offset(0, max), Field::Offset(1, min)]);
    // AssociatedFile: name 0, description 1, type 2 (TENSOR_AXIS_LABELS = 2).
    let file_name = b.string(LABELS_FILE);
    let file_desc = b.string("The class names, one a line, in the order of the outputs");
    let labels = b.table(&[
        Field::Offset(0, file_name),
        Field::Offset(1, file_desc),
        Field::U8(2, 2),
    ]);
    let files = b.vector_offsets(&[labels]);
    let description = match input {
        Input::Float => format!("Probabilities of the {classes} classes (softmax), float32"),
        Input::Uint8 => format!("Probabilities of the {classes} classes (softmax), uint8: probability = q / 256"),
    };
    let mut fields = vec![
        Field::Offset(3, content),
        Field::Offset(5, stats),
        Field::Offset(6, files),
    ];
    if let Some(threshold) = none_of_these {
        // ScoreThresholdingOptions (ProcessUnitOptions member 3): global_score_threshold 0. MediaPipe's classifier
        // takes it as its default score threshold: below it, no class ("none of these").
        let options = b.table(&[Field::F32(0, threshold)]);
        let unit = b.table(&[Field::U8(0, 3), Field::Offset(1, options)]);
        fields.push(Field::Offset(4, b.vector_offsets(&[unit])));
    }
    let output_meta = tensor_meta(&mut b, "probability", &description, fields);

    let inputs = b.vector_offsets(&[input_meta]);
    let outputs = b.vector_offsets(&[output_meta]);
    let subgraph = b.table(&[Field::Offset(2, inputs), Field::Offset(3, outputs)]);
    let subgraphs = b.vector_offsets(&[subgraph]);
    let name = b.string("Ajuste EfficientNet-Lite0 image classifier");
    let description = b.string(&format!(
        "EfficientNet-Lite0 fine-tuned with Ajuste on {classes} classes{}",
        if input == Input::Uint8 {
            ", full-integer (int8) quantised on the user's training images"
        } else {
            ""
        }
    ));
    let version = b.string(env!("CARGO_PKG_VERSION"));
    let author = b.string("Ajuste");
    let parser = b.string("1.0.0");
    let root = b.table(&[
        Field::Offset(0, name),
        Field::Offset(1, description),
        Field::Offset(2, version),
        Field::Offset(3, subgraphs),
        Field::Offset(4, author),
        Field::Offset(7, parser),
    ]);
    b.finish(root, b"M001")
}

fn tensor_meta(b: &mut Builder, name: &str, description: &str, mut fields: Vec<Field>) -> Pos {
    let name = b.string(name);
    let description = b.string(description);
    fields.push(Field::Offset(0, name));
    fields.push(Field::Offset(1, description));
    b.table(&fields)
}

/// The `.tflite` file: the model with its metadata, then the labels file in a zip after it (readers of the
/// model ignore what follows the FlatBuffer; zip readers find the archive from its end).
pub(crate) fn with_metadata(
    graph: &Graph,
    labels: &[String],
    input: Input,
    none_of_these: Option<f32>,
) -> Result<Vec<u8>, ExportError> {
    let meta = metadata_bytes(labels.len(), input, none_of_these);
    let description =
        "EfficientNet-Lite0 fine-tuned with Ajuste (input [1,224,224,3] NHWC, output probabilities [1,K])";
    let model = graph.to_bytes(description, &[("TFLITE_METADATA", &meta)]);
    let fail = |e: &dyn std::fmt::Display| ExportError::Write(format!("the labels in model.tflite: {e}"));
    let start = model.len() as u64;
    let mut cursor = Cursor::new(model);
    cursor.set_position(start);
    let mut zip = ZipWriter::new(cursor);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(false);
    zip.start_file(LABELS_FILE, options).map_err(|e| fail(&e))?;
    // One name a line; a name cannot break the file's lines.
    let text: String = labels
        .iter()
        .map(|l| format!("{}\n", l.replace(['\n', '\r'], " ")))
        .collect();
    zip.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}
