//! Turning dropped files into samples. Each image is decoded and prepared (224×224 RGB) as it comes in, so a
//! bad file is reported at once, by name, and a sample holds only what the model needs. A refused file never
//! touches what is already loaded: a class is created only when its first image is in hand.

use super::paths::{self, FileKind};
use super::plan::{Placement, is_folder, plan_folder, report_missing_images};
use super::zip_archive::{ReadError, ZipEntry, ZipReader};
use super::{ClassData, Dataset, FileError, IngestReport, InputFile, Sample, clean_class_name, clean_file_name};
use crate::preprocess::{PreprocessError, SUPPORTED, prepare_rgb};

/// Largest image file read (a bigger one is refused before decoding); also the cap on one zip entry.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// Whether a file is an image by its name or, failing that, its content (a `.jfif`, or no extension at all).
fn looks_like_image(name: &str, bytes: &[u8]) -> bool {
    match paths::kind_of(name) {
        FileKind::Image | FileKind::UnsupportedImage(_) => true,
        FileKind::Zip => false,
        FileKind::Other(_) => image::guess_format(bytes).is_ok(),
    }
}

impl Dataset {
    /// A folder drop or pick: each file's class is its folder (see [`plan_folder`]). Zips in the drop are opened.
    pub fn add_folder_files(&mut self, mut files: Vec<InputFile>) -> IngestReport {
        // Browsers list files in no set order: sorted, new classes come out alphabetical.
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let (plan, mut report) = plan_folder(&paths);
        let found: Vec<bool> = files
            .iter()
            .zip(&plan)
            .map(|(file, placement)| self.place(placement, file, &mut report))
            .collect();
        report_missing_images(&paths, &found, None, &mut report);
        report
    }

    /// Adds one file where [`plan_folder`] placed it (lets a caller read and decode a large drop file by file).
    /// Also says whether the file held an image (or a zip), for [`missing_images`] once the drop is done.
    pub fn add_planned(&mut self, placement: &Placement, file: &InputFile) -> (IngestReport, bool) {
        let mut report = IngestReport::default();
        let found = self.place(placement, file, &mut report);
        (report, found)
    }

    /// Loose images into one class, created if new. Only the file name counts, not its folders.
    pub fn add_to_class(&mut self, class: &str, files: Vec<InputFile>) -> IngestReport {
        let mut report = IngestReport::default();
        let mut found = Vec::with_capacity(files.len());
        for file in &files {
            let name = file.path.rsplit('/').next().unwrap_or(&file.path);
            found.push(if paths::is_hidden(&file.path) || is_folder(&file.path) {
                false
            } else if let FileKind::Zip = paths::kind_of(name) {
                report.errors.push(FileError::new(
                    &file.path,
                    "a zip cannot be added to one class: drop it on the page instead",
                ));
                true
            } else {
                self.add_one(class, &file.path, &clean_file_name(name), &file.bytes, &mut report)
            });
        }
        let names: Vec<&str> = files.iter().map(|f| f.path.rsplit('/').next().unwrap_or("")).collect();
        report_missing_images(&names, &found, None, &mut report);
        report
    }

    /// A `.zip` laid out like a folder drop. Entries are inflated one at a time, so memory holds the zip and
    /// one entry, not the whole unpacked archive. Messages name the zip and the entry.
    pub fn add_zip(&mut self, zip_name: &str, bytes: &[u8]) -> IngestReport {
        let mut report = IngestReport::default();
        self.add_zip_into(zip_name, bytes, &mut report);
        report
    }

    /// Returns whether the file held images (for "no images found"), its outcome going into `report`.
    fn place(&mut self, placement: &Placement, file: &InputFile, report: &mut IngestReport) -> bool {
        match placement {
            Placement::Skip => false,
            Placement::Zip => {
                self.add_zip_into(&file.path, &file.bytes, report);
                true
            }
            Placement::Refused(problem) => {
                report.errors.push(FileError::new(&file.path, problem.clone()));
                looks_like_image(&file.path, &file.bytes)
            }
            Placement::Class { class, name } => self.add_one(class, &file.path, name, &file.bytes, report),
        }
    }

    fn add_zip_into(&mut self, zip_name: &str, bytes: &[u8], report: &mut IngestReport) {
        if let Some(mut zip) = ZipDrop::open(zip_name, bytes, report) {
            while zip.add_next(self, usize::MAX, report) {}
            zip.finish(report);
        }
    }

    /// Checks, decodes and adds one image; returns whether it was an image at all (by name or content).
    fn add_one(&mut self, class: &str, path: &str, name: &str, bytes: &[u8], report: &mut IngestReport) -> bool {
        match prepare_file(path, name, bytes) {
            Ok(pixels) => self.add_prepared(class, path, Sample::new(name, pixels), report),
            Err((error, image)) => {
                report.errors.push(error);
                image
            }
        }
    }

    /// Adds an image that [`prepare_file`] accepted (its pixels in memory, or only its key for one kept
    /// elsewhere) to `class`, created if new. `path` names it in messages. Images are told apart by content:
    /// the very same image already in the class is skipped, a different image under a name already taken is
    /// added under a new name, and an image already in another class is added with a warning (one image under
    /// two labels leaks between training and validation). Returns whether it was an image (always).
    pub fn add_prepared(&mut self, class: &str, path: &str, sample: Sample, report: &mut IngestReport) -> bool {
        let error = |problem: String| FileError::new(path, problem);
        let Some(class) = clean_class_name(class) else {
            report.errors.push(error(format!(
                "the class name “{}” is empty once invisible characters are removed",
                class.escape_debug()
            )));
            return true;
        };
        let name = sample.name.clone();
        // A stored sample keeps only its key: the 64-bit content hash decides then.
        let same = |s: &Sample| s.key() == sample.key() && (!s.in_memory() || s.pixels == sample.pixels);
        let existing = self.classes.iter().position(|c| c.name == class);
        if let Some(i) = existing
            && let Some(twin) = self.classes[i].samples.iter().find(|s| same(s))
        {
            let what = if twin.name == name {
                format!("“{name}” is already in class “{class}”")
            } else {
                format!("the same image is already in class “{class}” as “{}”", twin.name)
            };
            report.warnings.push(error(format!("{what}: skipped")));
            report.skipped += 1;
            return true;
        }
        for other in self.classes.iter().filter(|c| c.name != class) {
            if let Some(twin) = other.samples.iter().find(|s| same(s)) {
                report.warnings.push(error(format!(
                    "the same image is also in class “{}” (as “{}”): one image in two classes leaks between \
                     training and validation (it can be trained on under one label and checked under the other); \
                     remove it from the wrong class",
                    other.name, twin.name
                )));
                break;
            }
        }
        let mut sample = sample;
        if let Some(i) = existing
            && self.classes[i].samples.iter().any(|s| s.name == name)
        {
            let free = free_name(&self.classes[i], &name);
            report.warnings.push(error(format!(
                "a different image named “{name}” is already in class “{class}”: added as “{free}”"
            )));
            sample.name = free;
        }
        match existing {
            Some(i) => self.classes[i].samples.push(sample),
            None => self.classes.push(ClassData::new(class, vec![sample])),
        }
        report.added += 1;
        true
    }
}

/// The checks and preparation of one file named `name` (`path` in messages), as every ingest does them: no
/// dataset is involved, so any thread can run it. The prepared 224×224 pixels, or the problem and whether the
/// file was an image at all (by name or content; for "no images found").
pub fn prepare_file(path: &str, name: &str, bytes: &[u8]) -> Result<Vec<u8>, (FileError, bool)> {
    let error = |problem: String| FileError::new(path, problem);
    let not_an_image = || error(format!("not an image file (use {SUPPORTED})"));
    // An unknown extension (`.jfif`, none at all) is judged by its content, below; so is a known but
    // unsupported one (a JPEG saved as `.heic` is read as the JPEG it is).
    let (named_as_image, unsupported_ext) = match paths::kind_of(name) {
        FileKind::Image => (true, None),
        FileKind::Other(_) => (false, None),
        FileKind::UnsupportedImage(ext) => (true, Some(ext)),
        FileKind::Zip => return Err((not_an_image(), false)),
    };
    if bytes.is_empty() {
        let problem = if named_as_image {
            error("the file is empty (0 bytes)".into())
        } else {
            not_an_image()
        };
        return Err((problem, named_as_image));
    }
    if bytes.len() > MAX_FILE_BYTES {
        let problem = error(format!(
            "the file is too large ({} MB; the limit is {} MB)",
            bytes.len() >> 20,
            MAX_FILE_BYTES >> 20
        ));
        return Err((problem, named_as_image));
    }
    prepare_rgb(bytes).map_err(|e| match e {
        PreprocessError::Unsupported if !named_as_image => (not_an_image(), false),
        // Content no decoder knows (an SVG is text) under a known image format's name: that format.
        PreprocessError::Unsupported if let Some(ext) = unsupported_ext => {
            (error(PreprocessError::UnsupportedFormat(ext).to_string()), true)
        }
        e => (error(e.to_string()), true),
    })
}

/// `name` with " (2)", " (3)"… before its extension: the first one not taken in the class.
fn free_name(class: &ClassData, name: &str) -> String {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !stem.ends_with('/') => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| format!("{stem} ({n}){ext}"))
        .find(|candidate| class.samples.iter().all(|s| &s.name != candidate))
        .unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests;

/// A `.zip` added a few entries at a time ([`ZipDrop::add_next`]), so that the caller can store each batch's pixels
/// and drop them before the next: memory holds the zip and a batch of images, not the whole unpacked archive.
pub struct ZipDrop<'a> {
    name: String,
    zip: ZipReader<'a>,
    entries: Vec<ZipEntry>,
    plan: Vec<Placement>,
    found: Vec<bool>,
    next: usize,
}

impl<'a> ZipDrop<'a> {
    /// Opens the archive and plans its layout like a folder drop; what is wrong with it goes into `report`
    /// (`None`: it cannot be read at all).
    pub fn open(zip_name: &str, bytes: &'a [u8], report: &mut IngestReport) -> Option<Self> {
        let zip = match ZipReader::open(zip_name, bytes) {
            Ok(zip) => zip,
            Err(error) => {
                report.errors.push(error);
                return None;
            }
        };
        let (mut entries, refused) = zip.entries();
        report.errors.extend(refused);
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        let (plan, planned) = plan_folder(&paths);
        let prefix = |e: FileError| FileError::new(format!("{zip_name}: {}", e.file), e.problem);
        report.warnings.extend(planned.warnings.into_iter().map(prefix));
        Some(Self {
            name: zip_name.to_string(),
            found: vec![false; entries.len()],
            zip,
            entries,
            plan,
            next: 0,
        })
    }

    /// Entries in the archive, and those added so far.
    pub fn progress(&self) -> (usize, usize) {
        (self.next, self.entries.len())
    }

    /// Adds up to `n` more entries to `dataset`; returns whether any are left.
    pub fn add_next(&mut self, dataset: &mut Dataset, n: usize, report: &mut IngestReport) -> bool {
        let end = self.next.saturating_add(n).min(self.entries.len());
        for k in self.next..end {
            let entry = &self.entries[k];
            let shown = format!("{}: {}", self.name, entry.path);
            match &self.plan[k] {
                Placement::Skip => {}
                Placement::Refused(problem) => report.errors.push(FileError::new(shown, problem.clone())),
                // Not opened: nesting is how zip bombs multiply, and a dataset has no need for it.
                Placement::Zip => report.errors.push(FileError::new(
                    shown,
                    "a zip inside a zip is not opened: unzip it and drop its contents",
                )),
                Placement::Class { class, name } => match self.zip.read(entry) {
                    Ok(data) => self.found[k] = dataset.add_one(class, &shown, name, &data, report),
                    Err(ReadError::Entry(error)) => {
                        self.found[k] = looks_like_image(&entry.path, &[]);
                        report.errors.push(error);
                    }
                    Err(ReadError::Archive(error)) => {
                        report.errors.push(error);
                        self.next = self.entries.len();
                        return false;
                    }
                },
            }
        }
        self.next = end;
        end < self.entries.len()
    }

    /// Reports the folders that held no image; after the last entry.
    pub fn finish(self, report: &mut IngestReport) {
        let paths: Vec<&str> = self.entries.iter().map(|e| e.path.as_str()).collect();
        report_missing_images(&paths, &self.found, Some(&self.name), report);
    }
}
