//! The kept round's features for the report: the validation images' cut activations are cached, and the frozen
//! prefix is the same for every round, so the kept network runs only its trainable end on them.

use std::collections::HashMap;

use burn::module::Module;

use super::DeepTrainer;
use crate::model::EMBEDDING_DIM;

impl DeepTrainer {
    /// Images among `ids` that [`DeepTrainer::kept_features`] must be given pixels of (`supply`): neither their
    /// cut activations nor their pixels are at hand.
    pub fn kept_wants(&self, ids: &[usize]) -> Vec<usize> {
        ids.iter()
            .copied()
            .filter(|&i| self.cache.get(i, 0).is_none() && self.image(i).is_empty())
            .collect()
    }

    /// Features `[ids.len(), 1280]` (row-major, in the order of `ids`) of images `ids` through the kept round's
    /// network: cached cut activations through its tail, the other images through the frozen prefix first.
    pub async fn kept_features(&self, ids: &[usize]) -> Result<Vec<f32>, String> {
        let (x, rows) = self.cut_input(ids, None);
        let tail = match self.log.best() {
            Some(((tail, _), _)) => tail.clone(),
            None => self.tail.valid(),
        };
        let values = tail
            .forward(x)
            .into_data_async()
            .await
            .map_err(|e| format!("reading the kept model's features: {e:?}"))?
            .try_to_vec::<f32>()
            .map_err(|e| format!("reading the kept model's features: {e:?}"))?;
        let at: HashMap<usize, usize> = ids.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        let mut out = vec![0.0; ids.len() * EMBEDDING_DIM];
        for (row, i) in rows.iter().enumerate() {
            let k = at[i];
            out[k * EMBEDDING_DIM..(k + 1) * EMBEDDING_DIM]
                .copy_from_slice(&values[row * EMBEDDING_DIM..(row + 1) * EMBEDDING_DIM]);
        }
        Ok(out)
    }

    /// Drops pixels read in for the report once the run is over.
    pub fn forget_read_in(&mut self) {
        self.loaded.clear();
    }
}
