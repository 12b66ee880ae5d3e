//! Turning files into a dataset. Every image is decoded and prepared (224×224 RGB) as it comes in, so a bad
//! file is reported at once, by name, and a sample only holds what the model needs.

use std::collections::HashSet;

use super::paths::{self, FileKind};
use super::zip_archive;
use crate::preprocess::prepare_rgb;

/// Largest file read (a bigger "image" is refused before decoding).
pub const MAX_FILE_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Relative, '/'-separated; may start with the dropped folder's name.
    pub path: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub name: String,
    /// 224×224×3 RGB (HWC), the output of `preprocess::prepare_rgb`.
    pub pixels: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassData {
    pub name: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub problem: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

impl FileError {
    pub fn new(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub added: usize,
    pub errors: Vec<FileError>,
    pub warnings: Vec<FileError>,
}

/// Where a dropped file goes, decided for the whole drop at once (the dataset's root folder is recognised
/// from all the paths together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Class {
        class: String,
        name: String,
    },
    Zip,
    /// Hidden or system file: ignored without a message.
    Skip,
    Refused(String),
}

/// Places every path of a drop; warnings (e.g. nested folders) come back in the report.
pub fn plan_folder(paths: &[&str]) -> (Vec<Placement>, IngestReport) {
    let mut report = IngestReport::default();
    let mut plan = vec![Placement::Skip; paths.len()];
    let mut kept: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        if paths::is_hidden(path) {
            continue;
        }
        match paths::components(path) {
            Some(parts) if !parts.is_empty() => kept.push((i, parts)),
            _ => plan[i] = Placement::Refused("unsafe or empty path (it points outside the folder)".into()),
        }
    }
    let mut parts: Vec<Vec<String>> = kept.iter().map(|k| k.1.clone()).collect();
    paths::strip_common_root(&mut parts);
    let mut nested_warned = HashSet::new();
    for ((i, _), parts) in kept.into_iter().zip(parts) {
        let path = paths[i];
        plan[i] = if let FileKind::Zip = paths::kind_of(path) {
            Placement::Zip
        } else if parts.len() < 2 {
            Placement::Refused("not inside a class folder: put each image in a sub-folder named after its class".into())
        } else {
            if parts.len() > 2 && nested_warned.insert(parts[0].clone()) {
                report.warnings.push(FileError::new(
                    path,
                    format!("images in sub-folders of “{}” are counted in that class", parts[0]),
                ));
            }
            Placement::Class {
                class: parts[0].clone(),
                name: parts.last().cloned().unwrap_or_default(),
            }
        };
    }
    (plan, report)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    pub classes: Vec<ClassData>,
}

impl Dataset {
    pub fn num_images(&self) -> usize {
        self.classes.iter().map(|c| c.samples.len()).sum()
    }

    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// The label of every sample, classes in order.
    pub fn labels(&self) -> Vec<usize> {
        self.classes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| std::iter::repeat_n(i, c.samples.len()))
            .collect()
    }

    /// A folder drop or pick: each file's class is its folder.
    /// A folder drop or pick: each file's class is its folder.
    pub fn add_folder_files(&mut self, mut files: Vec<InputFile>) -> IngestReport {
        // Browsers list files in no set order: sorted, new classes (and their labels) come out alphabetical.
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let (plan, mut report) = plan_folder(&paths);
        for (file, placement) in files.iter().zip(plan) {
            let r = self.add_planned(&placement, file);
            merge(&mut report, r);
        }
        report
    }

    /// Adds one file where `plan_folder` placed it (lets a caller decode a large drop in small batches).
    pub fn add_planned(&mut self, placement: &Placement, file: &InputFile) -> IngestReport {
        let mut report = IngestReport::default();
        match placement {
            Placement::Skip => {}
            Placement::Zip => report = self.add_zip(&file.path, &file.bytes),
            Placement::Refused(problem) => report.errors.push(FileError::new(&file.path, problem.clone())),
            Placement::Class { class, name } => self.add_one(class, &file.path, name, &file.bytes, &mut report),
        }
        report
    }

    /// Loose images into one class (created if new).
    pub fn add_to_class(&mut self, class: &str, files: Vec<InputFile>) -> IngestReport {
        let mut report = IngestReport::default();
        for file in files {
            if paths::is_hidden(&file.path) {
                continue;
            }
            let name = file.path.rsplit('/').next().unwrap_or(&file.path).to_string();
            if let FileKind::Zip = paths::kind_of(&name) {
                report.errors.push(FileError::new(
                    &file.path,
                    "a zip cannot be added to one class: drop it on the page",
                ));
                continue;
            }
            self.add_one(class, &file.path, &name, &file.bytes, &mut report);
        }
        report
    }

    /// A `.zip` laid out like a folder drop.
    pub fn add_zip(&mut self, zip_name: &str, bytes: &[u8]) -> IngestReport {
        match zip_archive::read_entries(zip_name, bytes) {
            Err(error) => IngestReport {
                errors: vec![error],
                ..Default::default()
            },
            Ok((entries, mut skipped)) => {
                let found_any = !entries.is_empty();
                let mut report = self.add_folder_files(entries);
                for e in report.errors.iter_mut().chain(report.warnings.iter_mut()) {
                    e.file = format!("{zip_name}: {}", e.file);
                }
                skipped.append(&mut report.errors);
                report.errors = skipped;
                if !found_any && report.errors.is_empty() {
                    report
                        .errors
                        .push(FileError::new(zip_name, "no images found in the zip"));
                }
                report
            }
        }
    }

    fn add_one(&mut self, class: &str, path: &str, name: &str, bytes: &[u8], report: &mut IngestReport) {
        let Some(class) = paths::sanitize_class_name(class) else {
            report.errors.push(FileError::new(
                path,
                "its folder name is empty once odd characters are removed",
            ));
            return;
        };
        match paths::kind_of(name) {
            FileKind::Image => {}
            FileKind::UnsupportedImage(ext) => {
                report.errors.push(FileError::new(
                    path,
                    format!("{ext} images are not supported (use JPEG, PNG, GIF, WebP or BMP)"),
                ));
                return;
            }
            FileKind::Zip | FileKind::Other(_) => {
                report.errors.push(FileError::new(
                    path,
                    "not an image file (use JPEG, PNG, GIF, WebP or BMP)",
                ));
                return;
            }
        }
        if bytes.is_empty() {
            report.errors.push(FileError::new(path, "the file is empty (0 bytes)"));
            return;
        }
        if bytes.len() > MAX_FILE_BYTES {
            report.errors.push(FileError::new(
                path,
                format!(
                    "the file is too large ({} MB; the limit is {} MB)",
                    bytes.len() >> 20,
                    MAX_FILE_BYTES >> 20
                ),
            ));
            return;
        }
        let index = match self.classes.iter().position(|c| c.name == class) {
            Some(i) => i,
            None => {
                self.classes.push(ClassData {
                    name: class.clone(),
                    samples: Vec::new(),
                });
                self.classes.len() - 1
            }
        };
        if self.classes[index].samples.iter().any(|s| s.name == name) {
            report.warnings.push(FileError::new(
                path,
                format!("“{name}” is already in class “{class}”: skipped"),
            ));
            return;
        }
        match prepare_rgb(bytes) {
            Ok(pixels) => {
                self.classes[index].samples.push(Sample {
                    name: name.to_string(),
                    pixels,
                });
                report.added += 1;
            }
            Err(e) => {
                report.errors.push(FileError::new(path, e.to_string()));
                // A class created for this file only should not linger empty.
                if self.classes[index].samples.is_empty() {
                    self.classes.remove(index);
                }
            }
        }
    }

    pub fn rename_class(&mut self, index: usize, new_name: &str) -> Result<(), String> {
        let name = paths::sanitize_class_name(new_name).ok_or("a class name cannot be empty")?;
        if self
            .classes
            .iter()
            .enumerate()
            .any(|(i, c)| i != index && c.name == name)
        {
            return Err(format!("there is already a class named “{name}”"));
        }
        let class = self.classes.get_mut(index).ok_or("no such class")?;
        class.name = name;
        Ok(())
    }

    pub fn remove_class(&mut self, index: usize) {
        if index < self.classes.len() {
            self.classes.remove(index);
        }
    }

    /// Whether training can start; otherwise every reason, naming the classes concerned.
    pub fn check_trainable(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        match self.classes.len() {
            0 => problems.push("Add images first: a folder with one sub-folder per class.".to_string()),
            1 => problems.push(format!(
                "Only one class (“{}”): training needs at least 2 classes.",
                self.classes[0].name
            )),
            _ => {}
        }
        for class in &self.classes {
            if class.samples.len() < 2 {
                problems.push(format!(
                    "Class “{}” has {} image; each class needs at least 2 (one to train on, one to check).",
                    class.name,
                    class.samples.len()
                ));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

fn merge(into: &mut IngestReport, from: IngestReport) {
    into.added += from.added;
    into.errors.extend(from.errors);
    into.warnings.extend(from.warnings);
}
