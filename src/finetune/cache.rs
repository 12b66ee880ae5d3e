//! Activations at the cut, computed once per image view, within a byte budget: view 0 is the image itself
//! (validation images, and training images without augmentation), views 1..=K the augmentation bank's fixed
//! augmented copies of a training image (`trainer.rs` cycles them across epochs).

use std::collections::HashMap;

use crate::model::BLOCKS;

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

#[derive(Debug, Clone)]
pub struct ActivationCache {
    shape: [usize; 3],
    capacity: usize,
    /// By (image, view).
    entries: HashMap<(usize, usize), Vec<f32>>,
}

impl ActivationCache {
    /// A cache of at most `budget_bytes` of activations at block `cut`.
    pub fn new(cut: usize, budget_bytes: usize) -> Self {
        Self {
            shape: cut_shape(cut),
            capacity: budget_bytes / cut_bytes_per_image(cut),
            entries: HashMap::new(),
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
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.len() * self.floats_per_image() * 4
    }

    pub fn get(&self, image: usize, view: usize) -> Option<&[f32]> {
        self.entries.get(&(image, view)).map(Vec::as_slice)
    }

    /// Stores one image view's activations unless the budget is spent; returns whether it was stored.
    pub fn insert(&mut self, image: usize, view: usize, activations: Vec<f32>) -> bool {
        debug_assert_eq!(activations.len(), self.floats_per_image());
        let key = (image, view);
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            return false;
        }
        self.entries.insert(key, activations);
        true
    }
}
