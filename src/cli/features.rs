//! The backbone's features kept on disk in the output folder (`features.bin`) and read from it memory-mapped:
//! 100,000 images' features take disk, not RAM, and a run stopped while computing them, or another run on the
//! same images (other options, another mode), starts from those already computed. Features depend only on an
//! image's prepared pixels (the key) and on the shipped backbone, whatever the class or the options.
//!
//! The file: `FEATURES_MAGIC`, the row length (u32), then records of the image's pixel key (u64) and its row
//! (f32), little-endian, appended batch after batch. A record cut short by a kill is ignored, then dropped.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ajuste::model::EMBEDDING_DIM;
use ajuste::train::EmbeddingCache;
use ajuste::train::embeddings::{FeatureStore, MemoryRows};
use memmap2::{Mmap, MmapOptions};

const FEATURES_MAGIC: &[u8; 8] = b"AJFEAT1\n";
pub const FEATURES_FILE: &str = "features.bin";
const HEADER: usize = FEATURES_MAGIC.len() + 4;
const RECORD: usize = 8 + 4 * EMBEDDING_DIM;

/// A cache whose rows are those of the file at `path` (none when there is no such file) and the ones computed
/// next, appended to it; and how many the file held.
pub fn open(path: &Path) -> Result<(EmbeddingCache, usize), String> {
    let store = MappedFeatures::open(path)?;
    let kept = store.records;
    Ok((EmbeddingCache::in_store(Box::new(store)), kept))
}

#[derive(Debug)]
struct MappedFeatures {
    path: PathBuf,
    /// Open for reading and appending, once there is a file.
    file: Option<File>,
    /// The file's whole records (none while it has none).
    map: Option<Mmap>,
    /// Record number by key.
    index: HashMap<u64, usize>,
    records: usize,
    /// Rows computed after the file could not be written: kept in memory for this run only.
    unkept: MemoryRows,
    /// Whether the file may still be written.
    writable: bool,
}

impl MappedFeatures {
    fn open(path: &Path) -> Result<Self, String> {
        let mut store = Self {
            path: path.to_path_buf(),
            file: None,
            map: None,
            index: HashMap::new(),
            records: 0,
            unkept: MemoryRows::default(),
            writable: true,
        };
        let mut file = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(format!("{}: cannot be read ({e})", path.display())),
        };
        let mut header = [0u8; HEADER];
        let read = file.read_exact(&mut header);
        let dim = u32::from_le_bytes(header[FEATURES_MAGIC.len()..].try_into().expect("4 bytes")) as usize;
        if read.is_err() || !header.starts_with(FEATURES_MAGIC) || dim != EMBEDDING_DIM {
            return Err(format!(
                "{}: not a features file of this ajuste; remove it and the features are computed again",
                path.display()
            ));
        }
        let len = file
            .metadata()
            .map_err(|e| format!("{}: cannot be read ({e})", path.display()))?
            .len() as usize;
        store.file = Some(file);
        store.remap((len - HEADER) / RECORD)?;
        Ok(store)
    }

    /// Maps the file's first `records` records and indexes the ones not indexed yet.
    fn remap(&mut self, records: usize) -> Result<(), String> {
        if records == 0 {
            return Ok(());
        }
        let file = self.file.as_ref().expect("a file to map");
        // Safety: the file is this run's output folder's own; records are only ever appended to it, never changed.
        let map = unsafe { MmapOptions::new().len(HEADER + records * RECORD).map(file) }
            .map_err(|e| format!("{}: cannot be mapped ({e})", self.path.display()))?;
        for record in self.records..records {
            let at = HEADER + record * RECORD;
            let key = u64::from_le_bytes(map[at..at + 8].try_into().expect("8 bytes"));
            self.index.insert(key, record);
        }
        self.map = Some(map);
        self.records = records;
        Ok(())
    }

    /// Appends whole records after the ones mapped (dropping a torn one left by a kill) and maps them.
    fn append(&mut self, keys: &[u64], rows: &[f32]) -> Result<(), String> {
        let cannot = |e: std::io::Error| format!("{}: cannot be written ({e})", self.path.display());
        if self.file.is_none() {
            let mut file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(cannot)?;
            file.write_all(FEATURES_MAGIC).map_err(cannot)?;
            file.write_all(&(EMBEDDING_DIM as u32).to_le_bytes()).map_err(cannot)?;
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened above");
        let whole = (HEADER + self.records * RECORD) as u64;
        if file.metadata().map_err(cannot)?.len() != whole {
            file.set_len(whole).map_err(cannot)?;
        }
        let mut bytes = Vec::with_capacity(keys.len() * RECORD);
        for (key, row) in keys.iter().zip(rows.chunks_exact(EMBEDDING_DIM)) {
            bytes.extend(key.to_le_bytes());
            bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
        }
        file.write_all(&bytes).and_then(|()| file.flush()).map_err(cannot)?;
        self.remap(self.records + keys.len())
    }
}

impl FeatureStore for MappedFeatures {
    fn row(&self, key: u64) -> Option<&[f32]> {
        if let Some(row) = self.unkept.row(key) {
            return Some(row);
        }
        let at = HEADER + self.index.get(&key)? * RECORD + 8;
        let map = self.map.as_ref()?;
        Some(bytemuck::cast_slice(&map[at..at + 4 * EMBEDDING_DIM]))
    }

    fn insert(&mut self, keys: &[u64], rows: &[f32]) -> Result<(), String> {
        if self.writable && rows.len() == keys.len() * EMBEDDING_DIM {
            match self.append(keys, rows) {
                Ok(()) => return Ok(()),
                // A failure costs only the recomputation next time: said once, then rows stay in memory.
                Err(e) => {
                    eprintln!("warning: features not kept on disk: {e}");
                    self.writable = false;
                }
            }
        }
        self.unkept.insert(keys, rows)
    }

    fn len(&self) -> usize {
        self.index.len() + self.unkept.len()
    }
}
