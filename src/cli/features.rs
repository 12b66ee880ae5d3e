//! The backbone's features kept on disk in the output folder (`features.bin`), as the page keeps them in its
//! storage: a run stopped while computing them, or another run on the same images (other options, another
//! mode), starts from those already computed. Features depend only on an image's prepared pixels (the key) and
//! on the shipped backbone, whatever the class or the options.
//!
//! The file: `FEATURES_MAGIC`, the row length (u32), then records of the image's pixel key (u64) and its row
//! (f32), little-endian, appended batch after batch. A record cut short by a kill is ignored.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ajuste::model::EMBEDDING_DIM;
use ajuste::train::EmbeddingCache;

const FEATURES_MAGIC: &[u8; 8] = b"AJFEAT1\n";
pub const FEATURES_FILE: &str = "features.bin";
const HEADER: usize = FEATURES_MAGIC.len() + 4;
const RECORD: usize = 8 + 4 * EMBEDDING_DIM;

/// The features an earlier run left at `path` (none when there is no such file), and how many.
pub fn read(path: &Path) -> Result<(EmbeddingCache, usize), String> {
    let mut cache = EmbeddingCache::default();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((cache, 0)),
        Err(e) => return Err(format!("{}: cannot be read ({e})", path.display())),
    };
    let dim = bytes
        .get(FEATURES_MAGIC.len()..HEADER)
        .filter(|_| bytes.starts_with(FEATURES_MAGIC))
        .map(|d| u32::from_le_bytes(d.try_into().expect("4 bytes")) as usize);
    if dim != Some(EMBEDDING_DIM) {
        return Err(format!(
            "{}: not a features file of this ajuste; remove it and the features are computed again",
            path.display()
        ));
    }
    let mut keys = Vec::new();
    let mut rows = Vec::new();
    for chunk in bytes[HEADER..].chunks_exact(RECORD) {
        keys.push(u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")));
        rows.extend(
            chunk[8..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
    }
    if !keys.is_empty() {
        cache.insert(&keys, &rows)?;
    }
    Ok((cache, keys.len()))
}

/// Appends features to the file as they are computed.
pub struct FeatureFile {
    path: PathBuf,
    file: Option<File>,
}

impl FeatureFile {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
        }
    }

    /// Appends a batch (`keys.len()` rows one after the other); written whole, then flushed.
    pub fn append(&mut self, keys: &[u64], rows: &[f32]) -> Result<(), String> {
        let cannot = |e: std::io::Error| format!("{}: cannot be written ({e})", self.path.display());
        if self.file.is_none() {
            let fresh = !self.path.exists();
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(cannot)?;
            if fresh {
                file.write_all(FEATURES_MAGIC).map_err(cannot)?;
                file.write_all(&(EMBEDDING_DIM as u32).to_le_bytes()).map_err(cannot)?;
            } else {
                // A record cut short by a kill is dropped, so the new ones line up.
                let len = file.metadata().map_err(cannot)?.len();
                let (header, record) = (HEADER as u64, RECORD as u64);
                let whole = header + len.saturating_sub(header) / record * record;
                if whole != len {
                    file.set_len(whole).map_err(cannot)?;
                }
            }
            self.file = Some(file);
        }
        let mut bytes = Vec::with_capacity(keys.len() * RECORD);
        for (key, row) in keys.iter().zip(rows.chunks_exact(EMBEDDING_DIM)) {
            bytes.extend(key.to_le_bytes());
            bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(&bytes).and_then(|()| file.flush()).map_err(cannot)
    }
}
