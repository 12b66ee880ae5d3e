//! The project file (`.ajuste`): the whole work in one zip, to carry to another browser or machine.
//!
//! Entries (stored, not compressed: images and weights hardly compress):
//! - `manifest.json`: [`Manifest`] — format name and version, the classes with their images' names and entries,
//!   the training options, and where the model is;
//! - `images/{class}/{n}.{ext}`: each image as the user gave it when the dataset still has the file, else its
//!   prepared 224×224 pixels as PNG (lossless, so the pixels come back exactly);
//! - `model/model.safetensors` and `model/config.json`: the bytes the downloads give;
//! - `model/trained.json`: the kept model as the page keeps it (head, fine-tuned changes, report with charts
//!   and per-image predictions) and the fingerprint of the dataset it was trained on.
//!
//! Reading checks everything before returning: a damaged or foreign file is one [`ProjectError`] naming the
//! problem, and nothing half-read ever reaches the caller.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read, Write};

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::data::store::encode_image;
use crate::data::zip_archive::MAX_TOTAL_BYTES;
use crate::data::{ClassData, Dataset, Sample};
use crate::model::TensorFile;
use crate::options::TrainOptions;
use crate::preprocess::{IMAGE_SIZE, prepare_rgb};
use crate::train::Trained;

/// `format` in every manifest.
pub const FORMAT: &str = "ajuste-project";
/// The manifest version this build writes and reads.
pub const VERSION: u32 = 1;
pub const EXTENSION: &str = "ajuste";
const MANIFEST: &str = "manifest.json";
const MODEL: &str = "model/model.safetensors";
const CONFIG: &str = "model/config.json";
const TRAINED: &str = "model/trained.json";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectError {
    #[error("this is not a zip file, or it is damaged or truncated ({0})")]
    NotAZip(String),
    #[error("this is not an Ajuste project: {0}")]
    Foreign(String),
    #[error("this project was saved in format version {found}; this page reads version {VERSION}")]
    Version { found: u32 },
    #[error("the project's manifest.json is not valid: {0}")]
    Manifest(String),
    #[error("the project lacks “{0}”")]
    Missing(String),
    #[error("“{entry}” in the project is damaged: {why}")]
    Damaged { entry: String, why: String },
    #[error("the project is too large to open (over {} MB unpacked)", MAX_TOTAL_BYTES >> 20)]
    TooLarge,
    #[error("the project could not be written: {0}")]
    Write(String),
}

/// One image in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// The image's name in its class (`Sample::name`).
    pub name: String,
    /// The zip entry holding it.
    pub file: String,
    /// `true`: the entry is the prepared 224×224 RGB pixels as PNG; `false`: the file as the user gave it.
    pub prepared: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassEntry {
    pub name: String,
    pub images: Vec<ImageEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub weights: String,
    pub config: String,
    pub trained: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub created_by: String,
    pub classes: Vec<ClassEntry>,
    pub options: TrainOptions,
    pub model: Option<ModelEntry>,
}

/// The kept model as a project holds it: what the page keeps, and the export bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectModel {
    pub trained: Trained,
    /// `Dataset::fingerprint` of the images it was trained on (so a stale model stays marked stale).
    pub fingerprint: u64,
    /// `model.safetensors` and `config.json`, as downloaded.
    #[serde(skip)]
    pub weights: Vec<u8>,
    #[serde(skip)]
    pub config: String,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub dataset: Dataset,
    pub options: TrainOptions,
    pub model: Option<ProjectModel>,
}

/// The extension of an original file's entry, from its name (`bin` when it has none worth keeping).
fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|ext| !ext.is_empty() && ext.len() <= 5 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".into())
}

/// The project as one `.ajuste` file. `originals` holds, by pixel key, the files as the user gave them where
/// they are still known; every other image is written as its prepared pixels, as a PNG: from `stored` (the PNG
/// the page keeps in storage, `data::store::encode_image`) for a sample whose pixels are not in memory.
pub fn write(
    project: &Project,
    originals: &HashMap<u64, Vec<u8>>,
    stored: &HashMap<u64, Vec<u8>>,
) -> Result<Vec<u8>, ProjectError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // A fixed time (1980-01-01): the same project gives the same file, and no clock is read (wasm has none).
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), ProjectError> {
        zip.start_file(name, options)
            .and_then(|_| zip.write_all(bytes).map_err(Into::into))
            .map_err(|e| ProjectError::Write(format!("{name}: {e}")))
    };
    let mut classes = Vec::new();
    for (c, class) in project.dataset.classes.iter().enumerate() {
        let mut images = Vec::new();
        for (n, sample) in class.samples.iter().enumerate() {
            let entry = match originals.get(&sample.key()) {
                Some(bytes) => {
                    let file = format!("images/{c}/{n}.{}", extension(&sample.name));
                    put(&file, bytes)?;
                    ImageEntry {
                        name: sample.name.clone(),
                        file,
                        prepared: false,
                    }
                }
                None => {
                    let file = format!("images/{c}/{n}.png");
                    let png = match stored.get(&sample.key()) {
                        Some(png) => png.clone(),
                        None if sample.in_memory() => encode_image(&sample.pixels).map_err(ProjectError::Write)?,
                        None => {
                            return Err(ProjectError::Write(format!(
                                "the image “{}” in class “{}” could not be read back from storage",
                                sample.name, class.name
                            )));
                        }
                    };
                    put(&file, &png)?;
                    ImageEntry {
                        name: sample.name.clone(),
                        file,
                        prepared: true,
                    }
                }
            };
            images.push(entry);
        }
        classes.push(ClassEntry {
            name: class.name.clone(),
            images,
        });
    }
    let model = match &project.model {
        Some(model) => {
            let trained = serde_json::to_vec(model).map_err(|e| ProjectError::Write(e.to_string()))?;
            // A diverged run's non-finite numbers would be written as `null` and could not be read back.
            serde_json::from_slice::<ProjectModel>(&trained)
                .map_err(|_| ProjectError::Write("the model holds numbers that are not finite".into()))?;
            put(MODEL, &model.weights)?;
            put(CONFIG, model.config.as_bytes())?;
            put(TRAINED, &trained)?;
            Some(ModelEntry {
                weights: MODEL.into(),
                config: CONFIG.into(),
                trained: TRAINED.into(),
            })
        }
        None => None,
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_by: format!("Ajuste {}", env!("CARGO_PKG_VERSION")),
        classes,
        options: project.options.clone(),
        model,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| ProjectError::Write(e.to_string()))?;
    put(MANIFEST, &json)?;
    let cursor = zip.finish().map_err(|e| ProjectError::Write(e.to_string()))?;
    Ok(cursor.into_inner())
}

/// Reads entries, keeping the total unpacked size under [`MAX_TOTAL_BYTES`] (sizes are checked as read, not as
/// declared).
struct Reader<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    unpacked: u64,
}

impl Reader<'_> {
    fn read(&mut self, name: &str) -> Result<Vec<u8>, ProjectError> {
        let entry = match self.archive.by_name(name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Err(ProjectError::Missing(name.into())),
            Err(e) => return Err(damaged(name, e)),
        };
        let room = MAX_TOTAL_BYTES.saturating_sub(self.unpacked);
        let mut bytes = Vec::new();
        entry
            .take(room + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| damaged(name, e))?;
        self.unpacked += bytes.len() as u64;
        if self.unpacked > MAX_TOTAL_BYTES {
            return Err(ProjectError::TooLarge);
        }
        Ok(bytes)
    }
}

fn damaged(entry: &str, why: impl ToString) -> ProjectError {
    ProjectError::Damaged {
        entry: entry.into(),
        why: why.to_string(),
    }
}

fn read_manifest(reader: &mut Reader) -> Result<Manifest, ProjectError> {
    let bytes = reader.read(MANIFEST).map_err(|e| match e {
        ProjectError::Missing(_) => ProjectError::Foreign("it has no manifest.json".into()),
        other => other,
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ProjectError::Foreign(format!("manifest.json is not JSON ({e})")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(ProjectError::Foreign(format!(
            "manifest.json does not say “format”: “{FORMAT}”"
        )));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == VERSION as u64 => {}
        Some(v) => return Err(ProjectError::Version { found: v as u32 }),
        None => return Err(ProjectError::Manifest("it has no version".into())),
    }
    serde_json::from_value(value).map_err(|e| ProjectError::Manifest(e.to_string()))
}

fn read_image(reader: &mut Reader, image: &ImageEntry) -> Result<Vec<u8>, ProjectError> {
    let bytes = reader.read(&image.file)?;
    if !image.prepared {
        return prepare_rgb(&bytes).map_err(|e| damaged(&image.file, e));
    }
    let decoded =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).map_err(|e| damaged(&image.file, e))?;
    let size = IMAGE_SIZE as u32;
    match decoded {
        image::DynamicImage::ImageRgb8(rgb) if rgb.dimensions() == (size, size) => Ok(rgb.into_raw()),
        other => Err(damaged(
            &image.file,
            format!(
                "a prepared image must be {size}×{size} RGB, this one is {}×{} {:?}",
                other.width(),
                other.height(),
                other.color()
            ),
        )),
    }
}

fn read_model(reader: &mut Reader, entry: &ModelEntry) -> Result<ProjectModel, ProjectError> {
    let weights = reader.read(&entry.weights)?;
    let config = String::from_utf8(reader.read(&entry.config)?).map_err(|e| damaged(&entry.config, e))?;
    let trained = reader.read(&entry.trained)?;
    TensorFile::parse(&weights).map_err(|e| damaged(&entry.weights, e))?;
    let model: ProjectModel = serde_json::from_slice(&trained).map_err(|e| damaged(&entry.trained, e))?;
    let (labels, outputs) = (model.trained.report.labels.len(), model.trained.head.num_classes());
    if labels != outputs {
        return Err(damaged(
            &entry.trained,
            format!("the model has {outputs} outputs but {labels} labels"),
        ));
    }
    Ok(ProjectModel {
        weights,
        config,
        ..model
    })
}

/// Reads a `.ajuste` file back, checking every entry; the first problem found is the error.
pub fn read(bytes: &[u8]) -> Result<Project, ProjectError> {
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| ProjectError::NotAZip(e.to_string()))?;
    let mut reader = Reader { archive, unpacked: 0 };
    let manifest = read_manifest(&mut reader)?;
    let mut names = HashSet::new();
    let mut classes = Vec::new();
    for class in &manifest.classes {
        if class.name.trim().is_empty() || !names.insert(class.name.as_str()) {
            return Err(ProjectError::Manifest(format!(
                "the class name “{}” is empty or appears twice",
                class.name
            )));
        }
        let samples = class
            .images
            .iter()
            .map(|image| Ok(Sample::new(image.name.clone(), read_image(&mut reader, image)?)))
            .collect::<Result<Vec<_>, ProjectError>>()?;
        classes.push(ClassData::new(class.name.clone(), samples));
    }
    let model = match &manifest.model {
        Some(entry) => Some(read_model(&mut reader, entry)?),
        None => None,
    };
    Ok(Project {
        dataset: Dataset { classes },
        options: manifest.options,
        model,
    })
}
