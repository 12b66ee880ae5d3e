//! The augmentation bank: which augmented view of an image an epoch trains on, its pixels, and how many views
//! the activation budget holds.

use std::borrow::Cow;

use super::DeepTrainer;
use crate::options::TrainOptions;
use crate::rng::Rng;

impl DeepTrainer {
    /// Which view of `image` an epoch trains on: the image itself without augmentation, else one of the bank's
    /// views, cycled from a per-image offset (so a batch mixes views), or a new one every epoch without a bank.
    pub(super) fn view(&self, image: usize, epoch: usize) -> usize {
        match (self.augment.is_some(), self.views) {
            (false, _) => 0,
            (true, 0) => 1 + epoch,
            (true, k) => 1 + (epoch + view_rng(self.options.seed, image, 0).below(k)) % k,
        }
    }

    /// The pixels of one view: view 0 is the image, the others its augmentation drawn from a generator seeded
    /// by (seed, image, view), so a view is the same whether it is cached, recomputed or resumed.
    pub(super) fn view_pixels(&self, image: usize, view: usize) -> Cow<'_, [u8]> {
        match (&self.augment, view) {
            (Some(transform), v) if v > 0 => {
                Cow::Owned(transform(self.image(image), &mut view_rng(self.options.seed, image, v)))
            }
            _ => Cow::Borrowed(self.image(image)),
        }
    }

    /// The pixels of several views, in order. Natively the augmented ones are drawn on every core (a view depends
    /// only on its seed, so the same pixels come out): drawn one by one, they held a GPU's caching back to a few
    /// hundred views a second.
    pub(super) fn views_pixels(&self, views: &[(usize, usize)]) -> Vec<Cow<'_, [u8]>> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(transform) = &self.augment {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let drawn = views.iter().filter(|&&(_, v)| v > 0).count();
            if threads > 1 && drawn > 1 {
                let seed = self.options.seed;
                let jobs: Vec<(&[u8], usize, usize)> = views.iter().map(|&(i, v)| (self.image(i), i, v)).collect();
                let chunk = jobs.len().div_ceil(threads);
                return std::thread::scope(|scope| {
                    let handles: Vec<_> = jobs
                        .chunks(chunk)
                        .map(|part| {
                            scope.spawn(move || {
                                part.iter()
                                    .map(|&(pixels, i, v)| match v {
                                        0 => Cow::Borrowed(pixels),
                                        v => Cow::Owned(transform(pixels, &mut view_rng(seed, i, v))),
                                    })
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| h.join().expect("a view's augmentation panicked"))
                        .collect()
                });
            }
        }
        views.iter().map(|&(i, v)| self.view_pixels(i, v)).collect()
    }
}

/// Views in the augmentation bank: the asked number, fewer when the budget (after the validation images) holds
/// fewer for every training image, and one when it holds less than one each; none without augmentation.
pub(super) fn bank_views(options: &TrainOptions, augment: bool, train: usize, val: usize, capacity: usize) -> usize {
    if !augment {
        return 0;
    }
    // At least one view: when the budget cannot hold one for every image, the same view comes back every epoch,
    // so those cached are used every time rather than once in so many epochs.
    let fit = capacity.saturating_sub(val) / train.max(1);
    options.deep.augment.views.min(fit.max(1))
}

/// The generator of one augmented view (and, with view 0, of an image's offset in the bank's cycle).
fn view_rng(seed: u64, image: usize, view: usize) -> Rng {
    let mut mix = Rng::new(seed ^ (image as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    Rng::new(mix.next_u64() ^ (view as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
}
