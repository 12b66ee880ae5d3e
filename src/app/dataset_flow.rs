//! The dataset: the one copy of the user's images (`dataset`), what the cards show derived from it
//! (`classes`), and the ways it changes (ingest, sample, rename, remove, clear). Images may be added while a
//! training runs: that training goes on with the images it started with, and its results then say so.

use std::collections::HashMap;
use std::sync::Arc;

use ajuste::data::ingest::MAX_FILE_BYTES;
use ajuste::data::ingest::ZipDrop;
use ajuste::data::zip_archive::MAX_TOTAL_BYTES;
use ajuste::data::{
    ClassId, Dataset, FileError, IngestReport, InputFile, MAX_CLASS_NAME_CHARS, Placement, missing_images, plan_folder,
};
use ajuste::preprocess::thumbnail_rgba;
use leptos::prelude::*;

use super::browser::{rgba_data_url, yield_to_browser};
use super::dataset_store::Stored;
use super::error::AppError;
use super::files::{PickedFile, read_file, size_of};
use super::model_fetch::fetch_bytes;
use super::storage_use::StorageUse;

/// Zip entries decoded between two stores.
const ZIP_BATCH: usize = 16;

pub(super) const THUMBNAILS_PER_CLASS: usize = 4;
const THUMBNAIL_SIZE: usize = 64;

/// One class card, derived from the dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassView {
    pub id: ClassId,
    pub name: String,
    pub count: usize,
    /// Data URLs of a few thumbnails, with the sample index each shows.
    pub thumbnails: Vec<(usize, String)>,
}

/// The outcome of the last ingest: what the notice and the list of skipped files show.
#[derive(Clone, Debug, PartialEq)]
pub struct Ingested {
    pub source: String,
    pub report: IngestReport,
}

/// Where loose files go.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Sub-folders are classes (a dropped or picked folder).
    Folders,
    /// Loose images into this class (created if new).
    Class(String),
}

#[derive(Clone, Copy)]
pub struct DatasetFlow {
    /// Shared with a running training (copied only when changed meanwhile). Once an image is stored only its
    /// name and key stay here (`dataset_store.rs`).
    pub dataset: RwSignal<Arc<Dataset>>,
    pub classes: Memo<Vec<ClassView>>,
    /// `(done, total)` while files are being read.
    pub loading: RwSignal<Option<(usize, usize)>>,
    pub ingested: RwSignal<Option<Ingested>>,
    /// A remark on the last change (rename, removal, clear, restore).
    pub notice: RwSignal<Option<String>>,
    pub error: RwSignal<Option<AppError>>,
    /// Thumbnails by pixel key, made once per image; `thumbnails_made` changes when some are added from
    /// storage (after a reload).
    pub(super) thumbnails: StoredValue<HashMap<u64, String>>,
    pub(super) thumbnails_made: RwSignal<u64>,
    /// What is in storage and being written there.
    pub(super) stored: StoredValue<Stored>,
    /// Space used and free in the browser's storage, when known.
    pub storage: RwSignal<Option<StorageUse>>,
}

impl DatasetFlow {
    pub fn new() -> Self {
        let dataset = RwSignal::new(Arc::new(Dataset::default()));
        // Thumbnails by pixel key: made once per image, not on every change.
        let thumbnails = StoredValue::new(HashMap::<u64, String>::new());
        let thumbnails_made = RwSignal::new(0u64);
        let classes = Memo::new(move |_| {
            thumbnails_made.track();
            dataset.with(|d| {
                d.classes
                    .iter()
                    .map(|class| ClassView {
                        id: class.id(),
                        name: class.name.clone(),
                        count: class.samples.len(),
                        thumbnails: class
                            .samples
                            .iter()
                            .take(THUMBNAILS_PER_CLASS)
                            .enumerate()
                            .filter_map(|(i, s)| Some((i, thumbnail(thumbnails, s.key(), &s.pixels)?)))
                            .collect(),
                    })
                    .collect()
            })
        });
        Self {
            dataset,
            classes,
            loading: RwSignal::new(None),
            ingested: RwSignal::new(None),
            notice: RwSignal::new(None),
            error: RwSignal::new(None),
            thumbnails,
            thumbnails_made,
            stored: StoredValue::new(Stored::default()),
            storage: RwSignal::new(None),
        }
    }

    pub fn images(&self) -> usize {
        self.classes.with(|c| c.iter().map(|c| c.count).sum())
    }

    pub(super) fn change<R>(&self, f: impl FnOnce(&mut Dataset) -> R) -> R {
        let mut out = None;
        self.dataset.update(|d| out = Some(f(Arc::make_mut(d))));
        out.expect("update runs its closure")
    }

    fn finish(&self, source: String, report: IngestReport) {
        self.loading.set(None);
        self.notice.set(None);
        self.ingested.set(Some(Ingested { source, report }));
    }

    /// Reads picked files (zips are unpacked in Rust) and adds them one by one, yielding so the progress bar
    /// moves; nothing already loaded is lost on error.
    pub async fn ingest(self, mut picked: Vec<PickedFile>, problems: Vec<String>, target: Target, source: String) {
        if let Target::Class(name) = &target
            && name.chars().count() > MAX_CLASS_NAME_CHARS
        {
            return self.error.set(Some(AppError::NewClass(format!(
                "a class name can have at most {MAX_CLASS_NAME_CHARS} characters (this one has {})",
                name.chars().count()
            ))));
        }
        if let Err(why) = self.check_room(&picked).await {
            return self.error.set(Some(AppError::NoRoom(why)));
        }
        self.stored.update_value(|s| s.failed = false);
        self.error.set(None);
        // Sorted, new classes come out in alphabetical order whatever order the browser listed the files in.
        picked.sort_by(|a, b| a.path.cmp(&b.path));
        let total = picked.len();
        self.loading.set(Some((0, total)));
        let mut report = IngestReport::default();
        for problem in problems {
            let (file, why) = problem.split_once(": ").unwrap_or((&problem, "could not be read"));
            report.errors.push(FileError::new(file, why));
        }
        // Where each file goes is decided on the whole drop (its root folder is recognised from all paths).
        let target_is_folders = matches!(target, Target::Folders);
        let routes: Vec<Route> = match target {
            Target::Folders => {
                let paths: Vec<&str> = picked.iter().map(|p| p.path.as_str()).collect();
                let (plan, planned) = plan_folder(&paths);
                report.merge(planned);
                plan.into_iter().map(Route::Planned).collect()
            }
            Target::Class(class) => vec![Route::Into(class); total],
        };
        let paths: Vec<String> = picked.iter().map(|p| p.path.clone()).collect();
        let mut found = vec![false; total];
        for (i, (file, route)) in picked.into_iter().zip(routes).enumerate() {
            self.loading.set(Some((i, total)));
            if let Route::Planned(placement @ (Placement::Skip | Placement::Refused(_))) = &route {
                let input = InputFile {
                    path: file.path,
                    bytes: Vec::new(),
                };
                report.merge(self.change(|d| d.add_planned(placement, &input)).0);
                continue;
            }
            // A file that cannot be read still counts as an image found (as natively): its error says why.
            found[i] = true;
            let input = match read_checked(file, route == Route::Planned(Placement::Zip)).await {
                Ok(input) => input,
                Err(e) => {
                    report.errors.push(e);
                    continue;
                }
            };
            if route == Route::Planned(Placement::Zip) {
                self.ingest_zip(&input, &mut report).await;
                self.loading.set(Some((i, total)));
                continue;
            }
            report.merge(match &route {
                Route::Planned(placement) => {
                    let (placed, held_image) = self.change(|d| d.add_planned(placement, &input));
                    found[i] = held_image;
                    placed
                }
                Route::Into(class) => self.change(|d| d.add_to_class(class, vec![input])),
            });
            // Stored as they come, so the page never holds more than a few images' pixels.
            self.store_new_or_report().await;
            // Each decode takes a few milliseconds: yield now and then so the page repaints.
            if i % 4 == 3 {
                yield_to_browser().await;
            }
        }
        if target_is_folders {
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            report.merge(missing_images(&paths, &found));
        }
        self.finish(source, report);
    }

    /// A zip's entries a batch at a time, each batch stored (and its pixels dropped) before the next, with the
    /// entries' progress: a zip of 10,000 images needs no more memory than a folder of them.
    async fn ingest_zip(&self, input: &InputFile, report: &mut IngestReport) {
        let Some(mut zip) = ZipDrop::open(&input.path, &input.bytes, report) else {
            return;
        };
        loop {
            let more = self.change(|d| zip.add_next(d, ZIP_BATCH, report));
            self.loading.set(Some(zip.progress()));
            self.store_new_or_report().await;
            yield_to_browser().await;
            if !more {
                break;
            }
        }
        zip.finish(report);
    }

    /// Loads the bundled sample (public/sample/index.json lists its files).
    pub async fn load_sample(self) {
        #[derive(serde::Deserialize)]
        struct Index {
            classes: std::collections::BTreeMap<String, Vec<String>>,
        }
        let index = match fetch_bytes("sample/index.json").await {
            Ok(bytes) => serde_json::from_slice::<Index>(&bytes).map_err(|e| format!("sample/index.json: {e}")),
            Err(e) => Err(e),
        };
        let index = match index {
            Ok(index) => index,
            Err(e) => return self.error.set(Some(AppError::Sample(e))),
        };
        self.error.set(None);
        let paths: Vec<String> = index.classes.values().flatten().cloned().collect();
        let total = paths.len();
        let mut files = Vec::new();
        let mut report = IngestReport::default();
        for (i, path) in paths.into_iter().enumerate() {
            self.loading.set(Some((i, total)));
            match fetch_bytes(&format!("sample/{path}")).await {
                Ok(bytes) => files.push(InputFile {
                    path: format!("sample/{path}"),
                    bytes,
                }),
                Err(e) => report.errors.push(FileError::new(path, e)),
            }
        }
        for chunk in files.chunks(8) {
            report.merge(self.change(|d| d.add_folder_files(chunk.to_vec())));
            self.store_new_or_report().await;
            yield_to_browser().await;
        }
        self.finish("Sample dataset".into(), report);
    }

    /// Renames a class; a refusal is returned (and shown) and the name stays as it was.
    pub fn rename(&self, id: ClassId, name: &str) -> Result<(), AppError> {
        let result = self.change(|d| match d.index_of(id) {
            Some(i) => d.rename_class(i, name),
            None => Err("that class was removed".into()),
        });
        let outcome = result.map_err(|why| AppError::Rename {
            name: name.trim().chars().take(40).collect::<String>()
                + if name.trim().chars().count() > 40 { "…" } else { "" },
            why,
        });
        match &outcome {
            Ok(()) => {
                self.error.set(None);
                self.notice.set(Some(format!("Renamed class to “{}”.", name.trim())));
            }
            Err(e) => self.error.set(Some(e.clone())),
        }
        outcome
    }

    pub fn remove(&self, id: ClassId) {
        let name = self.change(|d| {
            let i = d.index_of(id)?;
            let name = d.classes[i].name.clone();
            d.remove_class(i);
            Some(name)
        });
        if let Some(name) = name {
            self.notice.set(Some(format!("Removed class “{name}”.")));
        }
    }

    pub fn clear(&self) {
        self.dataset.set(Arc::new(Dataset::default()));
        self.ingested.set(None);
        self.error.set(None);
        self.notice.set(Some("Dataset cleared.".into()));
    }

    /// Moves a mislabelled image (by pixel key) from class `from` to class `to` (by name).
    pub fn move_image(&self, key: u64, from: &str, to: &str) -> Result<(), AppError> {
        let index = |name: &str| {
            self.dataset
                .with_untracked(|d| d.classes.iter().position(|c| c.name == name))
                .ok_or_else(|| AppError::Move(format!("there is no class “{name}” any more")))
        };
        let (from_index, to_index) = (index(from)?, index(to)?);
        self.change(|d| d.move_sample(key, from_index, to_index))
            .map_err(AppError::Move)?;
        self.notice
            .set(Some(format!("Moved an image from “{from}” to “{to}”.")));
        Ok(())
    }

    /// The pixels and name of one sample, for the ImageNet preview (read back from storage if kept there).
    pub async fn sample(self, id: ClassId, index: usize) -> Option<(String, Vec<u8>)> {
        let (name, key, pixels) = self.dataset.with_untracked(|d| {
            let s = d.classes.get(d.index_of(id)?)?.samples.get(index)?;
            Some((s.name.clone(), s.key(), s.pixels.clone()))
        })?;
        if !pixels.is_empty() {
            return Some((name, pixels));
        }
        let cache = ajuste::web::store::open().await.ok()?;
        let pixels = ajuste::web::store::read_images(&cache, &[key]).await.ok()?.pop()?;
        Some((name, pixels))
    }
}

/// Where one file of an ingest goes.
#[derive(Clone, PartialEq)]
enum Route {
    Planned(Placement),
    Into(String),
}

/// Reads a file after checking its size, so an oversized file is refused before it is read into memory.
async fn read_checked(file: PickedFile, zip: bool) -> Result<InputFile, FileError> {
    let limit = if zip {
        MAX_TOTAL_BYTES as f64
    } else {
        MAX_FILE_BYTES as f64
    };
    let size = size_of(&file.file);
    if size > limit {
        return Err(FileError::new(
            file.path,
            format!("the file is too large ({:.0} MB)", size / 1e6),
        ));
    }
    let name = file.path.clone();
    read_file(file).await.map_err(|e| FileError::new(name, e))
}

pub(super) fn thumbnail(cache: StoredValue<HashMap<u64, String>>, key: u64, pixels: &[u8]) -> Option<String> {
    if let Some(url) = cache.with_value(|c| c.get(&key).cloned()) {
        return Some(url);
    }
    if pixels.is_empty() {
        return None;
    }
    let rgba = thumbnail_rgba(pixels, THUMBNAIL_SIZE);
    let url = rgba_data_url(&rgba, THUMBNAIL_SIZE as u32, THUMBNAIL_SIZE as u32).ok()?;
    cache.update_value(|c| {
        c.insert(key, url.clone());
    });
    Some(url)
}
