//! Activations at the cut, computed once per image view, within a byte budget: view 0 is the image itself
//! (validation images, and training images without augmentation), views 1..=K the augmentation bank's fixed
//! augmented copies of a training image (`trainer.rs` cycles them across epochs). In memory (the page), or
//! natively in a memory-mapped file (`file.rs`: the command), where a budget of gigabytes costs little RAM.

use std::collections::HashMap;

use crate::model::BLOCKS;

#[cfg(not(target_arch = "wasm32"))]
mod file;

/// Bytes of one image's f32 activations at the input of block `cut` (the frozen prefix's output).
pub fn cut_bytes_per_image(cut: usize) -> usize {
    let [c, h, w] = cut_shape(cut);
    4 * c * h * w
}

/// `[channels, height, width]` at the input of block `cut` (224×224 images).
pub fn cut_shape(cut: usize) -> [usize; 3] {
    let spec = &BLOCKS[cut];
    [spec.cin, spec.size_in, spec.size_in]
}

#[derive(Debug)]
pub struct ActivationCache {
    shape: [usize; 3],
    capacity: usize,
    /// By (image, view): the slot holding its activations.
    slots: HashMap<(usize, usize), usize>,
    store: Store,
}

#[derive(Debug)]
enum Store {
    /// One vector per slot.
    Memory(Vec<Vec<f32>>),
    /// Slots of a file mapped into memory, reserved for as many as the trainer will store.
    #[cfg(not(target_arch = "wasm32"))]
    File(file::Slots),
}

impl ActivationCache {
    /// A cache of at most `budget_bytes` of activations at block `cut`, in memory.
    pub fn new(cut: usize, budget_bytes: usize) -> Self {
        Self {
            shape: cut_shape(cut),
            capacity: budget_bytes / cut_bytes_per_image(cut),
            slots: HashMap::new(),
            store: Store::Memory(Vec::new()),
        }
    }

    /// A cache of at most `budget_bytes` of activations at block `cut`, in a file made at `path` (replacing any)
    /// when [`ActivationCache::reserve`] says how many it will hold. The file is removed once mapped (Unix), or
    /// when the cache is dropped, so a killed run leaves no stale one behind on Unix.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn in_file(cut: usize, budget_bytes: usize, path: &std::path::Path) -> Self {
        Self {
            store: Store::File(file::Slots::new(path, cut_bytes_per_image(cut))),
            ..Self::new(cut, budget_bytes)
        }
    }

    /// Makes room for `images` image views (at most the capacity): a file's disk space is taken now, so a full
    /// disk is an error here rather than a crash while training.
    pub fn reserve(&mut self, images: usize) -> Result<(), String> {
        let images = images.min(self.capacity);
        match &mut self.store {
            Store::Memory(slots) => slots.reserve(images),
            #[cfg(not(target_arch = "wasm32"))]
            Store::File(file) => file.reserve(images)?,
        }
        Ok(())
    }

    /// Where the activations are kept, for the record: "memory" or the file's path.
    pub fn place(&self) -> String {
        match &self.store {
            Store::Memory(_) => "memory".into(),
            #[cfg(not(target_arch = "wasm32"))]
            Store::File(file) => file.path().display().to_string(),
        }
    }

    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// f32 values per image.
    pub fn floats_per_image(&self) -> usize {
        self.shape.iter().product()
    }

    /// Images the budget allows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.len() * self.floats_per_image() * 4
    }

    pub fn get(&self, image: usize, view: usize) -> Option<&[f32]> {
        let slot = *self.slots.get(&(image, view))?;
        Some(match &self.store {
            Store::Memory(slots) => &slots[slot],
            #[cfg(not(target_arch = "wasm32"))]
            Store::File(file) => file.get(slot),
        })
    }

    /// Stores one image view's activations unless the budget (or a file's reserved room) is spent; returns
    /// whether it was stored.
    pub fn insert(&mut self, image: usize, view: usize, activations: &[f32]) -> bool {
        assert_eq!(activations.len(), self.floats_per_image(), "activations of another cut");
        if let Some(&slot) = self.slots.get(&(image, view)) {
            match &mut self.store {
                Store::Memory(slots) => slots[slot].copy_from_slice(activations),
                #[cfg(not(target_arch = "wasm32"))]
                Store::File(file) => file.put(slot, activations),
            }
            return true;
        }
        let slot = self.slots.len();
        let room = match &self.store {
            Store::Memory(_) => self.capacity,
            #[cfg(not(target_arch = "wasm32"))]
            Store::File(file) => file.reserved().min(self.capacity),
        };
        if slot >= room {
            return false;
        }
        match &mut self.store {
            Store::Memory(slots) => slots.push(activations.to_vec()),
            #[cfg(not(target_arch = "wasm32"))]
            Store::File(file) => file.put(slot, activations),
        }
        self.slots.insert((image, view), slot);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(cut: usize, fill: f32) -> Vec<f32> {
        vec![fill; cut_bytes_per_image(cut) / 4]
    }

    #[test]
    fn memory_cache_holds_what_its_budget_allows() {
        let cut = 12;
        let mut cache = ActivationCache::new(cut, 2 * cut_bytes_per_image(cut));
        assert!(cache.insert(0, 0, &values(cut, 1.0)));
        assert!(cache.insert(1, 0, &values(cut, 2.0)));
        assert!(!cache.insert(2, 0, &values(cut, 3.0)), "over budget");
        assert!(
            cache.insert(0, 0, &values(cut, 4.0)),
            "an entry already held is replaced"
        );
        assert_eq!(cache.get(0, 0).unwrap()[0], 4.0);
        assert_eq!(cache.get(1, 0).unwrap()[0], 2.0);
        assert_eq!(cache.get(2, 0), None);
        assert_eq!(cache.len(), 2);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn file_cache_gives_back_what_it_was_given_within_its_reserved_room() {
        let cut = 12;
        let dir = std::env::temp_dir().join(format!("ajuste-cache-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("activations.bin");
        let mut cache = ActivationCache::in_file(cut, 10 * cut_bytes_per_image(cut), &path);
        assert!(!cache.insert(0, 0, &values(cut, 1.0)), "nothing reserved yet");
        cache.reserve(3).unwrap();
        let ramp: Vec<f32> = (0..cut_bytes_per_image(cut) / 4).map(|i| i as f32 * 0.5).collect();
        assert!(cache.insert(7, 2, &ramp));
        assert!(cache.insert(8, 0, &values(cut, -3.0)));
        assert!(cache.insert(9, 1, &values(cut, 5.0)));
        assert!(!cache.insert(10, 0, &values(cut, 6.0)), "beyond the reserved room");
        assert_eq!(cache.get(7, 2).unwrap(), ramp.as_slice());
        assert_eq!(cache.get(8, 0).unwrap(), values(cut, -3.0).as_slice());
        assert_eq!(cache.get(9, 1).unwrap()[0], 5.0);
        assert_eq!(cache.get(10, 0), None);
        assert_eq!(cache.place(), path.display().to_string());
        #[cfg(unix)]
        assert!(!path.exists(), "the file is unlinked once mapped");
        drop(cache);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn file_cache_in_a_folder_that_cannot_be_written_says_which() {
        let path = std::path::Path::new("/nonexistent-ajuste-dir/activations.bin");
        let err = ActivationCache::in_file(12, 1 << 30, path).reserve(4).unwrap_err();
        assert!(err.contains("/nonexistent-ajuste-dir/activations.bin"), "{err}");
    }
}
