//! A folder's images kept on disk (issue 27: data that does not fit in memory). Ingest reads, checks and prepares
//! the files a few at a time on every core and keeps only each image's pixel key and path (`Sample::stored`); the
//! job asks for pixels by key (`Host::load_pixels`) and gets them read and prepared again, in parallel, off the
//! job's thread so that the next batch is read while this one computes. Preparation is the page's
//! (`ingest::prepare_file`, `prepare_rgb`), and so are the checks, the messages and the keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ajuste::data::ingest::{MAX_FILE_BYTES, prepare_file};
use ajuste::data::{Dataset, FileError, IngestReport, InputFile, Placement, Sample, missing_images, pixel_key};
use ajuste::project::{self, Project};
use indicatif::{ProgressBar, ProgressStyle};

/// Original files at most put into the `.ajuste` (`project::write` holds them and the project in memory). The
/// page opens projects up to 1 GB; a bigger dataset's project keeps the model and report, not the images.
const PROJECT_IMAGES_MAX: u64 = 256 << 20;

/// Where each stored image's file is, by pixel key. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct DiskImages {
    files: Arc<HashMap<u64, PathBuf>>,
}

/// One file's outcome on a worker thread: the key of its prepared pixels, or why it was refused (and whether
/// it was an image at all, for "no images found").
type Checked = Result<u64, (FileError, bool)>;

/// `work(i)` for every `i < n` on all cores (each thread takes the next index), results in index order.
fn in_parallel<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        mine.push((i, work(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a reader thread panicked"))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// Reads, checks and prepares one file as the page does; only its pixel key is kept.
fn check(shown: &str, name: &str, path: &Path) -> Checked {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    // Refused before reading, as the page refuses a file bigger than the limit.
    if size > MAX_FILE_BYTES as u64 {
        let why = format!("the file is too large ({:.0} MB)", size as f64 / 1e6);
        return Err((FileError::new(shown, why), true));
    }
    let bytes =
        std::fs::read(path).map_err(|e| (FileError::new(shown, format!("could not read the file ({e})")), true))?;
    prepare_file(shown, name, &bytes).map(|pixels| pixel_key(&pixels))
}

impl DiskImages {
    /// The images of a folder (`shown`/… in messages, as a dropped folder's are): `files` holds its files as
    /// (shown path, path on disk), `empty` its empty folders. Images become `Sample::stored`; a zip in the folder
    /// is read into memory as the page reads it.
    pub fn ingest(mut files: Vec<(String, PathBuf)>, empty: &[String]) -> (Dataset, IngestReport, Self) {
        // Sorted as the page sorts a drop: classes come out alphabetical, duplicates are judged in that order.
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let paths: Vec<&str> = files.iter().map(|(shown, _)| shown.as_str()).collect();
        let (plan, mut report) = ajuste::data::plan_folder(&paths);
        report
            .errors
            .extend(empty.iter().map(|dir| FileError::new(dir, "the folder is empty")));
        let bar = ProgressBar::new(files.len() as u64).with_style(
            ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} ({eta} left)")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message("Reading images");
        let checked: Vec<Option<Checked>> = in_parallel(files.len(), |i| {
            let Placement::Class { name, .. } = &plan[i] else {
                return None;
            };
            let outcome = check(paths[i], name, &files[i].1);
            bar.inc(1);
            Some(outcome)
        });
        bar.finish_and_clear();
        let mut dataset = Dataset::default();
        let mut on_disk = HashMap::new();
        let mut found = vec![false; files.len()];
        for (i, (placement, outcome)) in plan.iter().zip(checked).enumerate() {
            let (shown, path) = &files[i];
            found[i] = match (placement, outcome) {
                (Placement::Class { class, name }, Some(Ok(key))) => {
                    let added = report.added;
                    dataset.add_prepared(class, shown, Sample::stored(name.clone(), key), &mut report);
                    if report.added > added {
                        on_disk.entry(key).or_insert_with(|| path.clone());
                    }
                    true
                }
                (_, Some(Err((error, image)))) => {
                    report.errors.push(error);
                    image
                }
                (Placement::Zip, _) => {
                    let (added, _) = match std::fs::read(path) {
                        Ok(bytes) => dataset.add_planned(
                            placement,
                            &InputFile {
                                path: shown.clone(),
                                bytes,
                            },
                        ),
                        Err(e) => {
                            let mut unread = IngestReport::default();
                            unread
                                .errors
                                .push(FileError::new(shown, format!("could not read the file ({e})")));
                            (unread, true)
                        }
                    };
                    report.merge(added);
                    true
                }
                // Skipped or refused by its path alone: judged by name, as the page judges it unread.
                _ => {
                    let unread = InputFile {
                        path: shown.clone(),
                        bytes: Vec::new(),
                    };
                    let (refused, image) = dataset.add_planned(placement, &unread);
                    report.merge(refused);
                    image
                }
            };
        }
        report.merge(missing_images(&paths, &found));
        let images = Self {
            files: Arc::new(on_disk),
        };
        (dataset, report, images)
    }

    /// The prepared pixels of images `keys`, in order, read on all cores; each is checked against its key (a
    /// file changed since it was read is an error, not a silently different image).
    pub fn load(&self, keys: &[u64]) -> Result<Vec<Vec<u8>>, String> {
        in_parallel(keys.len(), |i| {
            let key = keys[i];
            let path = self
                .files
                .get(&key)
                .ok_or_else(|| format!("no file holds image {key:016x}"))?;
            let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot be read ({e})", path.display()))?;
            let pixels = ajuste::preprocess::prepare_rgb(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            if pixel_key(&pixels) != key {
                return Err(format!("{} changed since training started", path.display()));
            }
            Ok(pixels)
        })
        .into_iter()
        .collect()
    }

    /// [`DiskImages::load`] on another thread: the future is ready once they are read, so a job that awaits it
    /// beside a computation (`join`) reads the next batch while the current one computes.
    pub fn read(&self, keys: &[u64]) -> impl Future<Output = Result<Vec<Vec<u8>>, String>> + use<> {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let (images, keys, filled) = (self.clone(), keys.to_vec(), slot.clone());
        std::thread::spawn(move || {
            let pixels = images.load(&keys);
            let mut slot = filled.lock().expect("the slot's lock");
            slot.value = Some(pixels);
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        });
        Later(slot)
    }

    /// `project` as a `.ajuste`, its stored images as the files the user gave (the page prepares them as it
    /// opens them, to the same pixels and keys). When those files are too many to hold, the project keeps the
    /// classes, options, model and report without images, and says so.
    pub fn project(&self, mut project: Project) -> Result<Vec<u8>, String> {
        let mut keys: Vec<u64> = project.dataset.keys();
        keys.retain(|k| self.files.contains_key(k));
        keys.sort_unstable();
        keys.dedup();
        let size: u64 = keys
            .iter()
            .map(|k| std::fs::metadata(&self.files[k]).map_or(0, |m| m.len()))
            .sum();
        let mut originals = HashMap::new();
        if size > PROJECT_IMAGES_MAX {
            eprintln!(
                "note: project.{} holds the model, its report and the options but not the images ({} MB of \
                 files, over the {} MB a project holds here): open the folder beside it",
                project::EXTENSION,
                size >> 20,
                PROJECT_IMAGES_MAX >> 20
            );
            project.dataset.classes.iter_mut().for_each(|c| c.samples.clear());
        } else {
            for key in keys {
                let path = &self.files[&key];
                let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot be read ({e})", path.display()))?;
                originals.insert(key, bytes);
            }
        }
        project::write(&project, &originals, &HashMap::new()).map_err(|e| e.to_string())
    }
}

/// Where [`DiskImages::read`]'s thread leaves the pixels, and who to wake then.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            value: None,
            waker: None,
        }
    }
}

struct Later<T>(Arc<Mutex<Slot<T>>>);

impl<T> Future for Later<T> {
    type Output = T;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.lock().expect("the slot's lock");
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
