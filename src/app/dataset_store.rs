//! The dataset's images in the browser's storage (`store.rs`, format: `ajuste::data::store`): each new image
//! is stored once and then only its name and key stay in memory; the index is written after the images it
//! names, and images no index names any more are removed after it. Thumbnails come back from storage after a
//! reload; a drop that would not fit is refused before any file is read.

use std::collections::HashSet;
use std::sync::Arc;

use ajuste::data::Dataset;
use leptos::prelude::*;

use super::dataset_flow::{DatasetFlow, THUMBNAILS_PER_CLASS, thumbnail};
use super::error::AppError;
use super::files::{PickedFile, size_of};
use super::storage_use;
use ajuste::web::store;

/// Images stored per round before the pixels are let go.
const STORE_BATCH: usize = 8;
/// What an image takes in storage before any is stored: a 224×224 PNG of a photo (84 kB on average for the
/// bundled sample's photos, measured in Chromium), rounded up.
const DEFAULT_IMAGE_BYTES: f64 = 100e3;

/// What the page knows of the store.
#[derive(Default)]
pub struct Stored {
    /// Keys of the images in storage.
    pub keys: HashSet<u64>,
    /// Keys being written now (by an ingest or the save loop).
    pub writing: HashSet<u64>,
    /// Bytes and count of the images this page stored, for estimates.
    pub bytes: f64,
    pub count: usize,
    /// Storing failed once: images stay in memory (and the save reports it) until the next ingest.
    pub failed: bool,
}

impl DatasetFlow {
    /// Stores the images whose pixels are still in memory, then lets go of their pixels (their thumbnails are
    /// made first). Images another call is writing are left to it.
    pub async fn store_new(&self) -> Result<(), String> {
        let cache = store::open().await?;
        loop {
            let batch: Vec<(u64, Vec<u8>)> = self
                .stored
                .try_update_value(|stored| {
                    let mut seen = HashSet::new();
                    let batch: Vec<(u64, Vec<u8>)> = self.dataset.with_untracked(|d| {
                        d.classes
                            .iter()
                            .flat_map(|c| &c.samples)
                            .filter(|s| s.in_memory() && !stored.writing.contains(&s.key()) && seen.insert(s.key()))
                            .take(STORE_BATCH)
                            .map(|s| (s.key(), s.pixels.clone()))
                            .collect()
                    });
                    stored.writing.extend(batch.iter().map(|(k, _)| *k));
                    batch
                })
                .unwrap_or_default();
            if batch.is_empty() {
                return Ok(());
            }
            let keys: Vec<u64> = batch.iter().map(|(k, _)| *k).collect();
            let (mut written, mut count) = (0.0, 0);
            let mut result = Ok(());
            for (key, pixels) in &batch {
                if self.stored.with_value(|s| s.keys.contains(key)) {
                    continue;
                }
                match store::put_image(&cache, *key, pixels).await {
                    Ok(bytes) => {
                        written += bytes as f64;
                        count += 1;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            self.stored.update_value(|s| {
                keys.iter().for_each(|k| {
                    s.writing.remove(k);
                });
                if result.is_ok() {
                    s.keys.extend(&keys);
                    s.bytes += written;
                    s.count += count;
                }
            });
            result?;
            self.release(&keys);
        }
    }

    /// [`store_new`](Self::store_new) during an ingest: a failure is shown once and the images stay in memory.
    pub async fn store_new_or_report(&self) {
        if self.stored.with_value(|s| s.failed) {
            return;
        }
        if let Err(why) = self.store_new().await {
            self.stored.update_value(|s| s.failed = true);
            self.error.set(Some(AppError::Save {
                what: "Your images",
                why,
            }));
        }
    }

    /// Drops the pixels of stored images from memory. Not a change of the dataset (same names and keys), so
    /// nothing else reacts; the thumbnails are made before.
    fn release(&self, keys: &[u64]) {
        self.classes.with_untracked(|_| ());
        let keys: HashSet<u64> = keys.iter().copied().collect();
        self.dataset.update_untracked(|d| {
            for s in Arc::make_mut(d).classes.iter_mut().flat_map(|c| c.samples.iter_mut()) {
                if keys.contains(&s.key()) {
                    s.pixels = Vec::new();
                }
            }
        });
    }

    /// Writes the index once every image it names is stored, then removes the images no index names any more
    /// (and, for an empty dataset, the features too). Returns how many images the index names.
    pub async fn save_index(&self) -> Result<usize, String> {
        let cache = store::open().await?;
        let current: Arc<Dataset> = loop {
            self.store_new().await?;
            // Images an ingest is still writing must be stored before an index names them.
            while self.stored.with_value(|s| !s.writing.is_empty()) {
                super::browser::yield_to_browser().await;
            }
            let current = self.dataset.get_untracked();
            if current.classes.iter().flat_map(|c| &c.samples).all(|s| !s.in_memory()) {
                break current;
            }
        };
        store::write_index(&cache, &current).await?;
        // Named neither by the index just written nor by the dataset now (an ingest may have gone on).
        let keys_of =
            |d: &Dataset| -> HashSet<u64> { d.classes.iter().flat_map(|c| &c.samples).map(|s| s.key()).collect() };
        let named = keys_of(&current);
        let live = self.dataset.with_untracked(|d| keys_of(d));
        let unnamed: Vec<u64> = self
            .stored
            .try_update_value(|s| {
                let gone: Vec<u64> = s
                    .keys
                    .iter()
                    .filter(|k| !named.contains(k) && !live.contains(k) && !s.writing.contains(k))
                    .copied()
                    .collect();
                gone.iter().for_each(|k| {
                    s.keys.remove(k);
                });
                gone
            })
            .unwrap_or_default();
        for key in unnamed {
            store::delete(&cache, &ajuste::data::store::image_entry(key)).await?;
        }
        if named.is_empty() && live.is_empty() {
            for name in store::entries(&cache).await? {
                if name.contains(ajuste::data::store::FEATURES_PREFIX) {
                    store::delete(&cache, &name).await?;
                }
            }
        }
        Ok(current.num_images())
    }

    /// Reads back the first images of each class whose thumbnails are not made yet (after a reload).
    pub async fn load_thumbnails(self) {
        let wanted: Vec<u64> = self.dataset.with_untracked(|d| {
            d.classes
                .iter()
                .flat_map(|c| c.samples.iter().take(THUMBNAILS_PER_CLASS))
                .map(|s| s.key())
                .collect()
        });
        self.make_thumbnails(wanted).await;
    }

    /// Makes the thumbnails of these images not made yet: from the pixels in memory, or read back from storage
    /// (where most images live only).
    pub async fn make_thumbnails(self, keys: Vec<u64>) {
        let wanted: Vec<u64> = keys
            .into_iter()
            .filter(|k| self.thumbnails.with_value(|t| !t.contains_key(k)))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let cache = store::open().await.ok();
        for key in wanted {
            let in_memory = self.dataset.with_untracked(|d| {
                d.classes
                    .iter()
                    .flat_map(|c| &c.samples)
                    .find(|s| s.key() == key && s.in_memory())
                    .map(|s| s.pixels.clone())
            });
            let pixels = match (in_memory, &cache) {
                (Some(pixels), _) => pixels,
                (None, Some(cache)) => match store::read_images(cache, &[key]).await {
                    Ok(mut pixels) => pixels.pop().unwrap_or_default(),
                    Err(_) => continue,
                },
                (None, None) => continue,
            };
            thumbnail(self.thumbnails, key, &pixels);
            self.thumbnails_made.update(|n| *n += 1);
        }
    }

    /// Refuses a drop that would not fit in what is left of the browser's storage (estimated from the sizes of
    /// the images stored so far); passes when the browser does not say.
    pub async fn check_room(&self, picked: &[PickedFile]) -> Result<(), String> {
        let Some(room) = storage_use::estimate().await else {
            return Ok(());
        };
        let per_image = self.stored.with_value(|s| {
            if s.count == 0 {
                DEFAULT_IMAGE_BYTES
            } else {
                s.bytes / s.count as f64
            }
        });
        let need: f64 = picked
            .iter()
            .map(|p| {
                if p.path.to_lowercase().ends_with(".zip") {
                    // A zip of JPEGs stores as PNGs about 3× its size.
                    size_of(&p.file) * 3.0
                } else {
                    per_image
                }
            })
            .sum();
        let free = room.quota - room.usage;
        if need > free {
            return Err(format!(
                "these files need about {} of browser storage and only {} is free",
                storage_use::size(need),
                storage_use::size(free.max(0.0))
            ));
        }
        Ok(())
    }
}
