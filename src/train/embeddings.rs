//! The backbone's features by image, computed once: [`EmbeddingCache`] finds the images still to embed and turns
//! a dataset into `TrainData` once every image is. Where the rows live is a [`FeatureStore`]: in memory by
//! default (the page, which also keeps them in its storage), or the command's memory-mapped file in its output
//! folder (`src/cli/features.rs`), so 100,000 images' features take disk rather than RAM.

use std::collections::HashMap;

use super::pipeline::TrainData;
use crate::data::Dataset;

/// Feature rows by the image's pixel key.
pub trait FeatureStore: std::fmt::Debug {
    fn row(&self, key: u64) -> Option<&[f32]>;
    /// Keeps `keys.len()` rows of `rows.len() / keys.len()` values each, one after the other (already checked to
    /// split evenly), replacing any held for the same key.
    fn insert(&mut self, keys: &[u64], rows: &[f32]) -> Result<(), String>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rows in memory, one vector each.
#[derive(Debug, Default)]
pub struct MemoryRows(HashMap<u64, Vec<f32>>);

impl FeatureStore for MemoryRows {
    fn row(&self, key: u64) -> Option<&[f32]> {
        self.0.get(&key).map(Vec::as_slice)
    }

    fn insert(&mut self, keys: &[u64], rows: &[f32]) -> Result<(), String> {
        let dim = rows.len() / keys.len();
        for (key, row) in keys.iter().zip(rows.chunks_exact(dim)) {
            self.0.insert(*key, row.to_vec());
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Embeddings by the sample's pixel key: they survive renames, removals, backend switches and retraining.
#[derive(Debug)]
pub struct EmbeddingCache {
    rows: Box<dyn FeatureStore>,
}

impl Default for EmbeddingCache {
    fn default() -> Self {
        Self::in_store(Box::new(MemoryRows::default()))
    }
}

impl EmbeddingCache {
    /// A cache whose rows live in `store` (and start as those it holds).
    pub fn in_store(store: Box<dyn FeatureStore>) -> Self {
        Self { rows: store }
    }

    /// The samples of `dataset` with no embedding yet, as (key, pixels), in dataset order, each image once;
    /// the pixels are empty for images kept out of memory.
    pub fn missing<'a>(&self, dataset: &'a Dataset) -> Vec<(u64, &'a [u8])> {
        let mut seen = std::collections::HashSet::new();
        dataset
            .classes
            .iter()
            .flat_map(|c| &c.samples)
            .filter(|s| self.rows.row(s.key()).is_none() && seen.insert(s.key()))
            .map(|s| (s.key(), s.pixels.as_slice()))
            .collect()
    }

    /// Stores a batch: `rows` holds `keys.len()` embeddings of equal length, one after the other.
    pub fn insert(&mut self, keys: &[u64], rows: &[f32]) -> Result<(), String> {
        if keys.is_empty() || rows.is_empty() || !rows.len().is_multiple_of(keys.len()) {
            return Err(format!(
                "{} values do not split into {} embeddings",
                rows.len(),
                keys.len()
            ));
        }
        self.rows.insert(keys, rows)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dataset as training input. Fails (naming the image) when an image is not embedded yet.
    pub fn train_data(&self, dataset: &Dataset) -> Result<TrainData, String> {
        let mut features = Vec::new();
        let mut dim = 0;
        for class in &dataset.classes {
            for sample in &class.samples {
                let row = self
                    .rows
                    .row(sample.key())
                    .ok_or_else(|| format!("“{}” in class “{}” has no features yet", sample.name, class.name))?;
                if dim != 0 && row.len() != dim {
                    return Err(format!("“{}” has {} features, not {dim}", sample.name, row.len()));
                }
                if dim == 0 {
                    dim = row.len();
                    features.reserve(dim * dataset.num_images());
                }
                features.extend_from_slice(row);
            }
        }
        Ok(TrainData {
            features,
            dim,
            labels: dataset.labels(),
            class_names: dataset.class_names(),
            keys: dataset.keys(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ClassData, Sample};

    #[test]
    fn cache_finds_missing_images_once_and_builds_train_data() {
        let class = |name: &str, values: &[u8]| {
            ClassData::new(
                name,
                values
                    .iter()
                    .map(|&v| Sample::new(format!("{v}.png"), vec![v; 4]))
                    .collect(),
            )
        };
        // Image 2 is in both classes: embedded once.
        let dataset = Dataset {
            classes: vec![class("a", &[1, 2]), class("b", &[2, 3])],
        };
        let mut cache = EmbeddingCache::default();
        let missing: Vec<u64> = cache.missing(&dataset).iter().map(|(k, _)| *k).collect();
        assert_eq!(missing.len(), 3);
        assert!(cache.train_data(&dataset).unwrap_err().contains("1.png"));
        cache.insert(&missing[..2], &[1.0, 1.0, 2.0, 2.0]).unwrap();
        assert_eq!(cache.missing(&dataset).len(), 1);
        assert!(cache.insert(&missing[2..], &[]).is_err());
        assert!(cache.insert(&missing[..2], &[1.0, 2.0, 3.0]).is_err());
        cache.insert(&missing[2..], &[3.0, 3.0, 3.0]).unwrap();
        assert!(
            cache.train_data(&dataset).unwrap_err().contains("not 2"),
            "rows of another length are refused"
        );
        cache.insert(&missing[2..], &[3.0, 3.0]).unwrap();
        assert_eq!(cache.len(), 3);
        let data = cache.train_data(&dataset).unwrap();
        assert_eq!(data.dim, 2);
        assert_eq!(data.labels, [0, 0, 1, 1]);
        assert_eq!(data.class_names, ["a", "b"]);
        assert_eq!(data.keys, dataset.keys());
        assert_eq!(
            data.features,
            [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0],
            "the shared image's row twice"
        );
    }
}
