//! Images kept out of memory (`TrainData::images` empty, known by key): each step's are read in before it and
//! dropped after, so a deeper run holds a batch or two of pixels, not the dataset.

use std::collections::HashSet;

use super::{DeepTrainer, State};

impl DeepTrainer {
    /// The pixels of image `i`: in the data, or read in for this step (`supply`).
    pub(super) fn image(&self, i: usize) -> &[u8] {
        match self.data.images[i].as_slice() {
            [] => self.loaded.get(&i).map_or(&[], Vec::as_slice),
            pixels => pixels,
        }
    }

    /// Images kept out of memory whose pixels the step `ahead` steps from now reads (0: the next step), as far as
    /// the current phase tells: those not held yet, in batch order. Only for steps within the phase under way;
    /// the first step of the next phase asks again when it comes.
    pub fn wanted(&self, ahead: usize) -> Vec<usize> {
        let mut seen = HashSet::new();
        self.reads(ahead)
            .into_iter()
            .filter(|&i| self.image(i).is_empty() && seen.insert(i))
            .collect()
    }

    /// Every image whose pixels the step `ahead` steps from now may read: none when all its views are cached,
    /// else all of its batch (a share sent to a helper carries the pixels of all its images when any is not
    /// cached).
    fn reads(&self, ahead: usize) -> Vec<usize> {
        let bs = self.options.batch_size;
        let window = |len: usize, next: usize| {
            let start = (next + ahead * bs).min(len);
            start..(start + bs).min(len)
        };
        let epoch = self.log.next_epoch();
        let unless_cached = |ids: &[usize], view: &dyn Fn(usize) -> usize| {
            if ids.iter().all(|&i| self.cache.get(i, view(i)).is_some()) {
                Vec::new()
            } else {
                ids.to_vec()
            }
        };
        match &self.state {
            State::Done => Vec::new(),
            State::Caching { queue, next } => queue[window(queue.len(), *next)].iter().map(|&(i, _)| i).collect(),
            State::Training { order, next, .. } => {
                unless_cached(&order[window(order.len(), *next)], &|i| self.view(i, epoch))
            }
            State::Validating { next, .. } => unless_cached(&self.data.val[window(self.data.val.len(), *next)], &|_| 0),
        }
    }

    /// Pixels of images `ids` read in for the coming steps (the reader checks them against their keys).
    pub fn supply(&mut self, ids: &[usize], pixels: Vec<Vec<u8>>) -> Result<(), String> {
        if pixels.len() != ids.len() {
            return Err(format!("{} images read back, not {}", pixels.len(), ids.len()));
        }
        self.loaded.extend(ids.iter().copied().zip(pixels));
        Ok(())
    }

    /// Drops the pixels read in for earlier steps, keeping what the next step reads.
    pub(super) fn release(&mut self) {
        if !self.loaded.is_empty() {
            let keep: HashSet<usize> = self.reads(0).into_iter().collect();
            self.loaded.retain(|i, _| keep.contains(i));
        }
    }

    /// Images read in and held now (a test's measure of the memory bound).
    pub fn images_held(&self) -> usize {
        self.loaded.len()
    }
}
