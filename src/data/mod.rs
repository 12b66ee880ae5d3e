//! The user's labelled images: ingest from a dropped folder, a zip or loose files, with an error per bad file
//! and nothing already loaded ever lost; and the stratified train/validation split.
//!
//! This file holds the types and the dataset's bookkeeping (rename, remove, checks); `ingest` adds files,
//! `zip_archive` reads zips safely, `paths` interprets file paths, `split` makes the train/validation split,
//! `snapshot` turns a dataset into bytes and back (the worker gets it so), `store` is the format of what the
//! page keeps across reloads (one entry per image, features, an index).

pub mod ingest;
pub mod paths;
pub mod snapshot;
pub mod split;
pub mod store;
pub mod zip_archive;

pub use ingest::{Placement, missing_images, plan_folder};

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

/// One refused or doubtful input, shown to the user as "{file}: {problem}".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub problem: String,
}

impl FileError {
    pub fn new(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            problem: problem.into(),
        }
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

impl std::error::Error for FileError {}

/// What one ingest call did: images added, files refused (errors), images skipped as already loaded
/// (`skipped`, each with a warning) and remarks on what was accepted (warnings: renamed, in two classes, nested
/// folders).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub added: usize,
    /// Images left out because the very same image is already in the class.
    pub skipped: usize,
    pub errors: Vec<FileError>,
    pub warnings: Vec<FileError>,
}

impl IngestReport {
    pub fn merge(&mut self, other: IngestReport) {
        self.added += other.added;
        self.skipped += other.skipped;
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }
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

    /// Puts back the pixels of samples kept out of memory, read by `read` (keys in, pixels in the same order
    /// out), a batch at a time; every pixel block is checked against its key.
    pub async fn fill_pixels<F, Fut>(&mut self, batch: usize, read: F) -> Result<(), String>
    where
        F: Fn(Vec<u64>) -> Fut,
        Fut: Future<Output = Result<Vec<Vec<u8>>, String>>,
    {
        let mut missing: Vec<&mut Sample> = self
            .classes
            .iter_mut()
            .flat_map(|c| c.samples.iter_mut())
            .filter(|s| !s.in_memory())
            .collect();
        for chunk in missing.chunks_mut(batch.max(1)) {
            let pixels = read(chunk.iter().map(|s| s.key).collect()).await?;
            if pixels.len() != chunk.len() {
                return Err(format!("{} images read back, not {}", pixels.len(), chunk.len()));
            }
            for (sample, pixels) in chunk.iter_mut().zip(pixels) {
                if pixel_key(&pixels) != sample.key {
                    return Err(format!(
                        "the image read back for “{}” is not the one stored",
                        sample.name
                    ));
                }
                sample.pixels = pixels;
            }
        }
        Ok(())
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
mod tests {
    use super::*;

    fn dataset(counts: &[(&str, usize)]) -> Dataset {
        let classes = counts
            .iter()
            .map(|(name, n)| {
                ClassData::new(
                    *name,
                    (0..*n)
                        .map(|i| Sample::new(format!("{i}.jpg"), vec![i as u8; 3]))
                        .collect(),
                )
            })
            .collect();
        Dataset { classes }
    }

    #[test]
    fn labels_counts_and_checks() {
        let d = dataset(&[("a", 2), ("b", 1), ("c", 0)]);
        assert_eq!(d.labels(), [0, 0, 1]);
        assert_eq!(d.num_images(), 3);
        let problems = d.check_trainable().unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("“b” has 1 image;") && problems[1].contains("“c” has 0 images"));
        assert!(dataset(&[("a", 2), ("b", 2)]).check_trainable().is_ok());
        let one = dataset(&[("cats", 5)]).check_trainable().unwrap_err();
        assert!(one[0].contains("cats") && one[0].contains("2 classes"), "{one:?}");
        assert!(Dataset::default().check_trainable().is_err());
    }

    #[test]
    fn rename_refuses_bad_names_and_keeps_the_old_one() {
        let mut d = dataset(&[("a", 2), ("b", 2)]);
        for bad in ["", "   ", "b", "x\u{7}y", "evil\u{202E}gpj", &"x".repeat(65)] {
            assert!(d.rename_class(0, bad).is_err(), "{bad:?} accepted");
            assert_eq!(d.classes[0].name, "a");
        }
        assert!(d.rename_class(5, "z").is_err());
        d.rename_class(0, "  big cats ").unwrap();
        assert_eq!(d.class_names(), ["big cats", "b"]);
        d.rename_class(0, "big cats").unwrap();
        let before = d.fingerprint();
        d.rename_class(0, "big cats").unwrap();
        assert_eq!(d.fingerprint(), before, "same name, same fingerprint");
        d.rename_class(0, "cats").unwrap();
        assert_ne!(d.fingerprint(), before, "a rename changes it");
        let mut moved = d.clone();
        let s = moved.classes[0].samples.pop().unwrap();
        moved.classes[1].samples.push(s);
        assert_ne!(
            moved.fingerprint(),
            d.fingerprint(),
            "an image in another class changes it"
        );
        d.rename_class(0, "big cats").unwrap();
        let b = d.classes[1].id();
        assert_eq!(d.index_of(b), Some(1));
        d.remove_class(7);
        d.remove_class(0);
        assert_eq!(d.class_names(), ["b"]);
        assert_eq!(d.index_of(b), Some(0), "the id follows the class");
        assert_ne!(ClassData::new("b", vec![]).id(), b, "ids are never reused");
    }

    #[test]
    fn move_sample_relabels_one_image() {
        let mut d = dataset(&[("a", 2), ("b", 1)]);
        // A same-named image already in "b": the moved one gets a suffix.
        d.classes[1].samples[0].name = d.classes[0].samples[1].name.clone();
        let key = d.classes[0].samples[1].key();
        let before = d.fingerprint();
        d.move_sample(key, 0, 1).unwrap();
        assert_eq!(d.labels(), [0, 1, 1]);
        assert_eq!(d.keys()[2], key);
        assert!(
            d.classes[1].samples[1].name.ends_with(" (2)"),
            "{}",
            d.classes[1].samples[1].name
        );
        assert_ne!(d.fingerprint(), before);
        assert!(d.move_sample(key, 0, 1).unwrap_err().contains("no longer in “a”"));
        assert!(d.move_sample(key, 1, 1).is_err());
        assert!(d.move_sample(key, 1, 9).is_err());
    }

    #[test]
    fn sample_key_is_the_pixels_identity() {
        let a = Sample::new("a.jpg", vec![1, 2, 3]);
        assert_eq!(a.key(), Sample::new("other name.png", vec![1, 2, 3]).key());
        assert_ne!(a.key(), Sample::new("a.jpg", vec![1, 2, 4]).key());
        assert_eq!(a.key(), pixel_key(&[1, 2, 3]));
    }

    #[test]
    fn pixels_kept_elsewhere_are_filled_back_and_checked() {
        let mut d = dataset(&[("a", 3)]);
        let full = d.clone();
        for s in &mut d.classes[0].samples[1..] {
            *s = Sample::stored(s.name.clone(), s.key());
        }
        assert_eq!(d.fingerprint(), full.fingerprint(), "the keys stay");
        let store = full.classes[0].samples.clone();
        let read = |keys: Vec<u64>| {
            let found = keys
                .iter()
                .map(|k| store.iter().find(|s| s.key() == *k).unwrap().pixels.clone())
                .collect();
            async move { Ok(found) }
        };
        let mut filled = d.clone();
        pollster::block_on(filled.fill_pixels(1, read)).unwrap();
        assert_eq!(filled, full);
        let wrong = |keys: Vec<u64>| async move { Ok(vec![vec![9u8; 3]; keys.len()]) };
        let error = pollster::block_on(d.clone().fill_pixels(2, wrong)).unwrap_err();
        assert!(error.contains("“1.jpg”"), "{error}");
        let short = |_: Vec<u64>| async move { Ok(Vec::new()) };
        assert!(pollster::block_on(d.fill_pixels(2, short)).is_err());
    }

    #[test]
    fn class_names_are_cleaned() {
        assert_eq!(clean_class_name("  big\u{7}  cats\t").as_deref(), Some("big cats"));
        assert_eq!(clean_class_name("ab\u{202E}cd\u{200B}").as_deref(), Some("ab cd"));
        assert_eq!(clean_class_name("👨\u{200D}👩").as_deref(), Some("👨\u{200D}👩"));
        assert_eq!(clean_class_name("\u{1}\u{2} \u{FEFF}"), None);
        assert_eq!(clean_class_name(&"é".repeat(100)).unwrap().chars().count(), 64);
        assert!(class_name_is_cut(&"é".repeat(65)));
        assert!(
            !class_name_is_cut(&format!("  {}   \u{7} ", "é".repeat(64))),
            "spacing removed is not a cut"
        );
        assert_eq!(clean_file_name("a\u{0}b\u{202E}.jpg"), "ab.jpg");
    }
}
