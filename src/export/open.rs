//! *Open model*: reads a `model.safetensors` exported earlier (ours, or any file with the same names and
//! shapes), with its `config.json` / `labels.txt` when given. Everything is checked before anything is built —
//! the header (size, JSON, offsets), every tensor's name, shape and dtype, finite values, the labels against the
//! classifier — and each problem is a message naming the tensor or file and what is wrong with it.

mod kept;

use std::collections::BTreeMap;

#[cfg(feature = "ml")]
use burn::tensor::Device;
use serde_json::Value;

use crate::head::{Head, NamedTensor};
use crate::model::{BLOCKS, EMBEDDING_DIM, TensorFile};
#[cfg(feature = "ml")]
use crate::model::{EfficientNetLite0, load_efficientnet};

/// The header may not be larger than this (ours is about 20 kB): a larger one is not a model of this layout.
const MAX_HEADER: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct OpenError {
    /// `model.safetensors`, `config.json` or `labels.txt` (or the name the user's file has).
    pub file: String,
    pub problem: String,
}

/// A model file that passed every check: its bytes (as given), its labels and its head.
#[derive(Debug, Clone)]
pub struct OpenedModel {
    pub bytes: Vec<u8>,
    pub labels: Vec<String>,
    pub head: Head,
    /// `config.json` when one was given (training options and metrics of the export).
    pub config: Option<Value>,
}

/// The tensors (name → shape) of EfficientNet-Lite0's backbone in the layout of `docs/model.md`.
pub fn backbone_layout() -> BTreeMap<String, Vec<usize>> {
    let mut layout = BTreeMap::new();
    let mut conv_bn = |prefix: String, shape: [usize; 4]| {
        for stat in ["weight", "bias", "running_mean", "running_var"] {
            layout.insert(format!("{prefix}.bn.{stat}"), vec![shape[0]]);
        }
        layout.insert(format!("{prefix}.conv.weight"), shape.to_vec());
    };
    conv_bn("stem".into(), [32, 3, 3, 3]);
    for (i, spec) in BLOCKS.iter().enumerate() {
        let hidden = spec.hidden();
        if spec.expand != 1 {
            conv_bn(format!("blocks.{i}.expand"), [hidden, spec.cin, 1, 1]);
        }
        conv_bn(format!("blocks.{i}.dw"), [hidden, 1, spec.kernel, spec.kernel]);
        conv_bn(format!("blocks.{i}.project"), [spec.cout, hidden, 1, 1]);
    }
    conv_bn("head".into(), [EMBEDDING_DIM, 320, 1, 1]);
    layout
}

struct Entry {
    dtype: String,
    shape: Vec<usize>,
    offsets: (usize, usize),
}

/// What the header says: the tensors (each checked for a known dtype and offsets that match its shape and lie
/// in the file), the `__metadata__`, and where the data starts.
struct Header {
    entries: BTreeMap<String, Entry>,
    metadata: Value,
    data_start: usize,
}

fn read_header(bytes: &[u8], err: &dyn Fn(String) -> OpenError) -> Result<Header, OpenError> {
    // Plain words first: the format's own terms come after, for whoever wants to look further.
    let err = |detail: String| {
        err(format!(
            "it is not a whole model file (damaged, cut short, or another kind of file): {detail}"
        ))
    };
    let Some(size) = bytes.get(..8) else {
        return Err(err(format!(
            "the file is {} bytes, too short for a safetensors file (it starts with an 8-byte header size)",
            bytes.len()
        )));
    };
    let n = u64::from_le_bytes(size.try_into().unwrap_or_default());
    let rest = (bytes.len() - 8) as u64;
    if n > MAX_HEADER || n > rest {
        return Err(err(format!(
            "the header size field says {n} bytes, but {} (not a safetensors file, or truncated?)",
            if n > rest {
                format!("only {rest} bytes follow it")
            } else {
                format!("a model header is at most {MAX_HEADER}")
            }
        )));
    }
    let header: Value = serde_json::from_slice(&bytes[8..8 + n as usize])
        .map_err(|e| err(format!("the header is not valid JSON: {e}")))?;
    let Value::Object(header) = header else {
        return Err(err("the header is not a JSON object".into()));
    };
    let data_len = rest as usize - n as usize;
    let mut entries = BTreeMap::new();
    let mut metadata = Value::Null;
    for (name, t) in header {
        if name == "__metadata__" {
            metadata = t;
            continue;
        }
        let bad = |what: &str| err(format!("tensor `{name}`: {what}"));
        let dtype = t["dtype"].as_str().ok_or_else(|| bad("no dtype"))?.to_string();
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).map_err(|_| bad("no valid shape"))?;
        let offsets: [usize; 2] =
            serde_json::from_value(t["data_offsets"].clone()).map_err(|_| bad("no valid data_offsets"))?;
        let width = match dtype.as_str() {
            "F32" => 4,
            "F16" => 2,
            // PyTorch's BN step counter, in files saved from a PyTorch state dict; never read.
            "I64" if name.ends_with(".num_batches_tracked") => 8,
            other => return Err(bad(&format!("dtype {other}, expected F32 or F16"))),
        };
        let needed = shape.iter().product::<usize>() * width;
        if offsets[1] < offsets[0] || offsets[1] - offsets[0] != needed {
            return Err(bad(&format!(
                "its data_offsets {offsets:?} hold {} bytes, but shape {shape:?} of {dtype} needs {needed}",
                offsets[1].saturating_sub(offsets[0])
            )));
        }
        if offsets[1] > data_len {
            return Err(bad(&format!(
                "its data ends at byte {} but the file has {data_len} bytes of data (truncated?)",
                offsets[1]
            )));
        }
        entries.insert(
            name,
            Entry {
                dtype,
                shape,
                offsets: (offsets[0], offsets[1]),
            },
        );
    }
    Ok(Header {
        entries,
        metadata,
        data_start: 8 + n as usize,
    })
}

/// Which classifier the file holds, checked: `classifier.{weight,bias}` or `classifier.{0,3}.*`.
fn classifier_layout(
    entries: &BTreeMap<String, Entry>,
    err: &dyn Fn(String) -> OpenError,
) -> Result<BTreeMap<String, Vec<usize>>, OpenError> {
    let shape = |name: &str| entries.get(name).map(|e| e.shape.clone());
    let dense = |prefix: &str, d_in: usize| -> Result<(usize, BTreeMap<String, Vec<usize>>), OpenError> {
        let w = format!("{prefix}.weight");
        let found = shape(&w).ok_or_else(|| err(format!("no tensor `{w}`")))?;
        if found.len() != 2 || found[1] != d_in || found[0] == 0 {
            return Err(err(format!(
                "tensor `{w}` has shape {found:?}, expected [classes, {d_in}]"
            )));
        }
        let d_out = found[0];
        Ok((
            d_out,
            BTreeMap::from([(w, found), (format!("{prefix}.bias"), vec![d_out])]),
        ))
    };
    match (
        entries.contains_key("classifier.weight"),
        entries.contains_key("classifier.0.weight"),
    ) {
        (true, false) => Ok(dense("classifier", EMBEDDING_DIM)?.1),
        (false, true) => {
            let (units, mut layout) = dense("classifier.0", EMBEDDING_DIM)?;
            layout.extend(dense("classifier.3", units)?.1);
            Ok(layout)
        }
        (true, true) => Err(err(
            "it has both a linear classifier (`classifier.weight`) and an MLP one (`classifier.0.weight`)".into(),
        )),
        (false, false) => Err(err(
            "no classifier: expected `classifier.weight` (linear head) or `classifier.0.weight` (MLP head)".into(),
        )),
    }
}

/// The first non-finite value of a tensor, if any.
fn non_finite(bytes: &[u8], entry: &Entry) -> Option<(usize, f32)> {
    let data = &bytes[entry.offsets.0..entry.offsets.1];
    let value = |i: usize| match entry.dtype.as_str() {
        "F32" => f32::from_le_bytes([data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]]),
        _ => half::f16::from_le_bytes([data[2 * i], data[2 * i + 1]]).to_f32(),
    };
    let count = entry.shape.iter().product::<usize>();
    (0..count).map(|i| (i, value(i))).find(|(_, v)| !v.is_finite())
}

/// Labels from `labels.txt` (`{index} {label}` lines, or one label a line), `config.json` (`labels`) or the
/// file's metadata, in that order; checked against the number of classes.
fn labels(
    metadata: &Value,
    config: Option<&Value>,
    labels_txt: Option<&str>,
    classes: usize,
) -> Result<Vec<String>, OpenError> {
    let from_json = |v: &Value| -> Option<Vec<String>> { serde_json::from_value(v.clone()).ok() };
    let (file, labels) = if let Some(text) = labels_txt {
        let labels = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| match line.split_once(' ') {
                Some((index, label)) if index == i.to_string() => label.to_string(),
                _ => line.to_string(),
            })
            .collect();
        ("labels.txt", labels)
    } else if let Some(labels) = config.and_then(|c| from_json(&c["labels"])) {
        ("config.json", labels)
    } else if let Some(labels) = metadata["labels"].as_str().and_then(|s| serde_json::from_str(s).ok()) {
        ("model.safetensors", labels)
    } else {
        return Ok((1..=classes).map(|i| format!("class {i}")).collect());
    };
    if labels.len() != classes {
        return Err(OpenError {
            file: file.into(),
            problem: format!(
                "{} labels, but the model's classifier has {classes} outputs",
                labels.len()
            ),
        });
    }
    Ok(labels)
}

/// Reads and checks a `model.safetensors` (+ optional `config.json` and `labels.txt` text).
pub fn open_model(
    model_safetensors: Vec<u8>,
    config_json: Option<&str>,
    labels_txt: Option<&str>,
) -> Result<OpenedModel, OpenError> {
    let err = |problem: String| OpenError {
        file: "model.safetensors".into(),
        problem,
    };
    let Header {
        entries,
        metadata,
        data_start,
    } = read_header(&model_safetensors, &err)?;
    let mut layout = backbone_layout();
    layout.extend(classifier_layout(&entries, &err)?);
    for (name, expected) in &layout {
        let entry = entries.get(name).ok_or_else(|| err(format!("no tensor `{name}`")))?;
        if &entry.shape != expected {
            return Err(err(format!(
                "tensor `{name}` has shape {:?}, expected {expected:?}",
                entry.shape
            )));
        }
    }
    // PyTorch's BN counters are harmless; anything else means another network.
    if let Some(name) = entries
        .keys()
        .find(|n| !layout.contains_key(*n) && !n.ends_with(".num_batches_tracked"))
    {
        return Err(err(format!(
            "unexpected tensor `{name}`: not part of EfficientNet-Lite0's layout (docs/model.md)"
        )));
    }
    let data = &model_safetensors[data_start..];
    for (name, entry) in entries.iter().filter(|(n, _)| layout.contains_key(*n)) {
        if let Some((i, v)) = non_finite(data, entry) {
            return Err(err(format!(
                "tensor `{name}` has a non-finite value ({v}) at index {i}"
            )));
        }
    }
    let config = config_json
        .map(|text| {
            serde_json::from_str::<Value>(text).map_err(|e| OpenError {
                file: "config.json".into(),
                problem: format!("not valid JSON: {e}"),
            })
        })
        .transpose()?;
    let file = TensorFile::parse(&model_safetensors).map_err(|e| err(e.to_string()))?;
    let head_tensors = layout
        .keys()
        .filter(|n| n.starts_with("classifier."))
        .map(|name| {
            let (shape, data) = file.f32_any_shape(name).map_err(|e| err(e.to_string()))?;
            Ok(NamedTensor {
                name: name.clone(),
                shape,
                data,
            })
        })
        .collect::<Result<Vec<_>, OpenError>>()?;
    let head = Head::from_tensors(&head_tensors).map_err(err)?;
    let labels = labels(&metadata, config.as_ref(), labels_txt, head.num_classes())?;
    drop(file);
    Ok(OpenedModel {
        bytes: model_safetensors,
        labels,
        head,
        config,
    })
}

#[cfg(feature = "ml")]
impl OpenedModel {
    /// The network to predict with (BN folded, as every model of the app).
    pub fn build(&self, device: &Device) -> Result<EfficientNetLite0, OpenError> {
        load_efficientnet(&self.bytes, device).map_err(|e| OpenError {
            file: "model.safetensors".into(),
            problem: e.to_string(),
        })
    }
}

/// `open_model` + `build`: the network and its labels, for trying a model saved earlier.
#[cfg(feature = "ml")]
pub fn load_model(
    model_safetensors: Vec<u8>,
    config_json: Option<&str>,
    labels_txt: Option<&str>,
    device: &Device,
) -> Result<(EfficientNetLite0, Vec<String>), OpenError> {
    let opened = open_model(model_safetensors, config_json, labels_txt)?;
    Ok((opened.build(device)?, opened.labels))
}
