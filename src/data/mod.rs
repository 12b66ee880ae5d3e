//! The user's labelled images: ingest from a dropped folder, a zip or loose files, with an error per bad file
//! and nothing already loaded ever lost; and the stratified train/validation split.
//!
//! This file holds the types and the dataset's bookkeeping (rename, remove, checks); `plan` decides where each
//! file of a drop goes, `ingest` adds files (`report`: what an ingest did),
//! `zip_archive` reads zips safely, `paths` interprets file paths, `split` makes the train/validation split,
//! `snapshot` turns a dataset into bytes and back (the worker gets it so), `store` is the format of what the
//! page keeps across reloads (one entry per image, features, an index).

pub mod ingest;
pub mod paths;
mod plan;
mod report;
pub mod snapshot;
pub mod split;
pub mod store;
pub mod zip_archive;

pub use plan::{Placement, missing_images, plan_folder};
pub use report::{FileError, IngestReport};

/// A file as the browser hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Relative, '/'-separated; may start with the dropped folder's name. A path ending in '/' is a folder
    /// (how an empty folder shows up).
    pub path: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The file's path below its class folder (`a.jpg`, or `sub/a.jpg` when nested): unique within a class.
    pub name: String,
    /// 224×224×3 RGB (HWC), the output of `preprocess::prepare_rgb`; empty while the image is kept out of
    /// memory (in the page's storage, see [`store`]), where whoever needs it reads it back by its key.
    pub pixels: Vec<u8>,
    /// `pixel_key(&pixels)`, computed once: the image's identity for the embedding cache (it survives renames,
    /// moves between classes and reloads).
    key: u64,
}

impl Sample {
    pub fn new(name: impl Into<String>, pixels: Vec<u8>) -> Self {
        let key = pixel_key(&pixels);
        Self {
            name: name.into(),
            pixels,
            key,
        }
    }

    /// A sample whose pixels are kept elsewhere (in storage), known by name and pixel key.
    pub fn stored(name: impl Into<String>, key: u64) -> Self {
        Self {
            name: name.into(),
            pixels: Vec::new(),
            key,
        }
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    /// Whether the pixels are in memory.
    pub fn in_memory(&self) -> bool {
        !self.pixels.is_empty()
    }
}

/// FNV-1a over the pixels: a cheap identity for a 224×224 image.
pub fn pixel_key(pixels: &[u8]) -> u64 {
    pixels.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A class's identity while the page lives: stays the same through renames and other classes' removal, so
/// the UI can key its cards by it. Not saved (a restored dataset gets fresh ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(u64);

impl ClassId {
    fn fresh() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

#[derive(Debug, Clone)]
pub struct ClassData {
    id: ClassId,
    pub name: String,
    pub samples: Vec<Sample>,
}

impl ClassData {
    pub fn new(name: impl Into<String>, samples: Vec<Sample>) -> Self {
        Self {
            id: ClassId::fresh(),
            name: name.into(),
            samples,
        }
    }

    pub fn id(&self) -> ClassId {
        self.id
    }
}

/// Same name and images: the id only tells live classes apart, it is not content.
impl PartialEq for ClassData {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.samples == other.samples
    }
}

impl Eq for ClassData {}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    pub classes: Vec<ClassData>,
}

/// Longest class name kept (longer folder names are cut, longer typed names refused).
pub const MAX_CLASS_NAME_CHARS: usize = 64;

/// Invisible characters that reorder or hide text (bidi controls, zero-width space, BOM): a name holding them
/// can display as something else. Zero-width (non-)joiners stay: emoji and several scripts need them.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
        )
        || matches!(c, '\u{2060}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A folder name made fit for display and export: invisible characters removed, whitespace collapsed, at most
/// 64 characters. `None` when nothing is left.
pub fn clean_class_name(raw: &str) -> Option<String> {
    let visible: String = raw.chars().map(|c| if is_invisible(c) { ' ' } else { c }).collect();
    paths::sanitize_class_name(&visible)
}

/// Whether [`clean_class_name`] cuts this name to fit (the user is told).
pub(crate) fn class_name_is_cut(raw: &str) -> bool {
    let visible: String = raw.chars().map(|c| if is_invisible(c) { ' ' } else { c }).collect();
    visible.split_whitespace().collect::<Vec<_>>().join(" ").chars().count() > MAX_CLASS_NAME_CHARS
}

/// A file name made fit for display: invisible characters removed.
pub(crate) fn clean_file_name(raw: &str) -> String {
    raw.chars().filter(|c| !is_invisible(*c)).collect()
}

impl Dataset {
    pub fn num_images(&self) -> usize {
        self.classes.iter().map(|c| c.samples.len()).sum()
    }

    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// The label of every sample: class index, classes in order, samples in order within each.
    pub fn labels(&self) -> Vec<usize> {
        self.classes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| std::iter::repeat_n(i, c.samples.len()))
            .collect()
    }

    /// The pixel key of every sample, in the order of `labels`.
    pub fn keys(&self) -> Vec<u64> {
        self.classes
            .iter()
            .flat_map(|c| c.samples.iter().map(Sample::key))
            .collect()
    }

    /// Moves the image with pixel key `key` from class `from` to the end of class `to` (a mislabelled image).
    /// A name already taken in `to` gets a numbered suffix. Refused when `to` already holds that image.
    pub fn move_sample(&mut self, key: u64, from: usize, to: usize) -> Result<(), String> {
        let count = self.classes.len();
        if from >= count || to >= count || from == to {
            return Err(format!("cannot move from class {} to class {}", from + 1, to + 1));
        }
        let position = self.classes[from]
            .samples
            .iter()
            .position(|s| s.key == key)
            .ok_or_else(|| format!("the image is no longer in “{}”", self.classes[from].name))?;
        if self.classes[to].samples.iter().any(|s| s.key == key) {
            return Err(format!("“{}” already has this image", self.classes[to].name));
        }
        let mut sample = self.classes[from].samples.remove(position);
        let taken = |name: &str| self.classes[to].samples.iter().any(|s| s.name == name);
        if taken(&sample.name) {
            let base = sample.name.clone();
            sample.name = (2..)
                .map(|n| format!("{base} ({n})"))
                .find(|n| !taken(n))
                .expect("some suffix is free");
        }
        self.classes[to].samples.push(sample);
        Ok(())
    }

    /// Changes whenever a class is added, removed or renamed or an image is added or removed: a model trained
    /// on a dataset with another fingerprint no longer matches it.
    pub fn fingerprint(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut mix = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for class in &self.classes {
            mix(class.name.as_bytes());
            mix(&[0xff]);
            for s in &class.samples {
                mix(&s.key.to_le_bytes());
            }
            mix(&[0xfe]);
        }
        h
    }

    /// Renames a class to what the user typed (surrounding spaces trimmed). Refuses empty names, names with
    /// invisible characters, names over 64 characters and the name of another class.
    pub fn rename_class(&mut self, index: usize, new_name: &str) -> Result<(), String> {
        if index >= self.classes.len() {
            return Err(format!("there is no class number {}", index + 1));
        }
        let name = new_name.trim();
        if name.is_empty() {
            return Err("a class name cannot be empty".into());
        }
        if name.chars().any(is_invisible) {
            return Err("a class name cannot contain control or invisible characters".into());
        }
        if name.chars().count() > MAX_CLASS_NAME_CHARS {
            return Err(format!(
                "a class name can have at most {MAX_CLASS_NAME_CHARS} characters"
            ));
        }
        if self
            .classes
            .iter()
            .enumerate()
            .any(|(i, c)| i != index && c.name == name)
        {
            return Err(format!("there is already a class named “{name}”"));
        }
        self.classes[index].name = name.to_string();
        Ok(())
    }

    /// The index of the class with this id (`None` once it is removed).
    pub fn index_of(&self, id: ClassId) -> Option<usize> {
        self.classes.iter().position(|c| c.id == id)
    }

    /// Removes a class and its images (an index past the end does nothing).
    pub fn remove_class(&mut self, index: usize) {
        if index < self.classes.len() {
            self.classes.remove(index);
        }
    }

    /// Whether training can start; otherwise every reason, naming the classes concerned.
    pub fn check_trainable(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        match self.classes.as_slice() {
            [] => problems.push("Add images first: a folder with one sub-folder per class.".to_string()),
            [only] => problems.push(format!(
                "Only one class (“{}”): training needs at least 2 classes.",
                only.name
            )),
            _ => {}
        }
        for class in &self.classes {
            let n = class.samples.len();
            if n < 2 {
                problems.push(format!(
                    "Class “{}” has {n} image{}; each class needs at least 2 (one to train on, one to check).",
                    class.name,
                    if n == 1 { "" } else { "s" }
                ));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

#[cfg(test)]
mod tests;
