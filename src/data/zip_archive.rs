//! Reading a dropped `.zip` safely, one entry at a time. Entries whose path is absolute or climbs out with `..`
//! are refused; the number of entries and the unpacked sizes are capped, both as declared (checked before
//! anything is inflated) and as actually inflated (a zip bomb can lie about its sizes).

use std::io::{Cursor, Read};

use zip::{CompressionMethod, ZipArchive};

use super::FileError;
use super::ingest::MAX_FILE_BYTES;
use super::paths;

/// Most entries read from one zip (folders and skipped files included).
pub const MAX_ENTRIES: usize = 20_000;
/// Most bytes one zip may unpack to, all entries together.
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;

/// An entry to read: a file, or a folder (path ending in '/', kept so that empty folders can be reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    index: usize,
    pub path: String,
}

/// Why an entry could not be read: that entry only, or the whole archive (stop reading it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    Entry(FileError),
    Archive(FileError),
}

pub struct ZipReader<'a> {
    name: String,
    archive: ZipArchive<Cursor<&'a [u8]>>,
    unpacked: u64,
}

fn mb(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

impl<'a> ZipReader<'a> {
    /// Opens the archive (its central directory only). A zip that cannot be used at all is one error naming it:
    /// unreadable, too many entries, or declaring more than [`MAX_TOTAL_BYTES`] in all.
    pub fn open(zip_name: &str, bytes: &'a [u8]) -> Result<Self, FileError> {
        let refuse = |problem: String| FileError::new(zip_name, problem);
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            refuse(format!(
                "not a readable zip archive: it may be damaged or incomplete ({e})"
            ))
        })?;
        if archive.len() > MAX_ENTRIES {
            return Err(refuse(format!(
                "too many entries ({}; the limit is {MAX_ENTRIES})",
                archive.len()
            )));
        }
        let mut declared = 0u64;
        for i in 0..archive.len() {
            let entry = archive
                .by_index_data(i)
                .map_err(|e| refuse(format!("the zip's table of contents is damaged ({e})")))?;
            declared = declared.saturating_add(entry.size());
        }
        if declared > MAX_TOTAL_BYTES {
            return Err(refuse(format!(
                "unpacks to {} MB, over the {} MB limit: split it into smaller zips",
                mb(declared),
                mb(MAX_TOTAL_BYTES)
            )));
        }
        Ok(Self {
            name: zip_name.to_string(),
            archive,
            unpacked: 0,
        })
    }

    fn shown(&self, path: &str) -> String {
        format!("{}: {path}", self.name)
    }

    /// The entries worth reading, and an error for each entry refused from its header alone (unsafe path,
    /// encrypted, unsupported compression, too large). Hidden and system files (`__MACOSX/`, `.DS_Store`) are
    /// left out silently.
    pub fn entries(&self) -> (Vec<ZipEntry>, Vec<FileError>) {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for index in 0..self.archive.len() {
            let Ok(entry) = self.archive.by_index_data(index) else {
                errors.push(FileError::new(
                    self.shown(&format!("entry {}", index + 1)),
                    "damaged entry",
                ));
                continue;
            };
            let Ok(raw_name) = entry.name() else {
                errors.push(FileError::new(
                    self.shown(&format!("entry {}", index + 1)),
                    "its name cannot be read",
                ));
                continue;
            };
            let path = raw_name.replace('\\', "/");
            if paths::is_hidden(&path) {
                continue;
            }
            let shown = self.shown(&path);
            let problem = if entry.enclosed_name().is_none() || paths::components(&path).is_none() {
                Some("refused: it would land outside the dataset (its path is absolute or contains '..')".to_string())
            } else if entry.is_dir() {
                let folder = if path.ends_with('/') { path } else { format!("{path}/") };
                entries.push(ZipEntry { index, path: folder });
                continue;
            } else if entry.is_symlink() {
                Some("a symbolic link, not an image: skipped".to_string())
            } else if entry.encrypted() {
                Some("password-protected: unzip it and drop the folder instead".to_string())
            } else if !matches!(
                entry.compression(),
                CompressionMethod::Stored | CompressionMethod::Deflated
            ) {
                Some(format!(
                    "compressed with {:?}, which cannot be read here: unzip it, or zip it again with the usual (Deflate) method",
                    entry.compression()
                ))
            } else if entry.size() > MAX_FILE_BYTES as u64 {
                Some(format!(
                    "too large ({} MB unpacked; the limit is {} MB)",
                    mb(entry.size()),
                    mb(MAX_FILE_BYTES as u64)
                ))
            } else {
                None
            };
            match problem {
                Some(problem) => errors.push(FileError::new(shown, problem)),
                None => entries.push(ZipEntry { index, path }),
            }
        }
        (entries, errors)
    }

    /// Inflates one entry, reading at most one byte more than its declared size (so a lying header is caught
    /// without inflating more) and stopping the whole archive once [`MAX_TOTAL_BYTES`] have been unpacked.
    pub fn read(&mut self, entry: &ZipEntry) -> Result<Vec<u8>, ReadError> {
        let shown = self.shown(&entry.path);
        let mut file = self
            .archive
            .by_index(entry.index)
            .map_err(|e| ReadError::Entry(FileError::new(&shown, format!("cannot be read ({e})"))))?;
        let declared = file.size().min(MAX_FILE_BYTES as u64);
        let mut data = Vec::new();
        let read = (&mut file).take(declared + 1).read_to_end(&mut data);
        // The zip reader itself stops past the declared size with an error of its own: either way, a lie.
        let over = |e: &std::io::Error| e.to_string().contains("larger than its declared");
        if data.len() as u64 > declared || read.as_ref().is_err_and(over) {
            return Err(ReadError::Entry(FileError::new(
                shown,
                "unpacks to more than its header declares: refused",
            )));
        }
        read.map_err(|e| ReadError::Entry(FileError::new(&shown, format!("damaged: {e}"))))?;
        self.unpacked += data.len() as u64;
        if self.unpacked > MAX_TOTAL_BYTES {
            return Err(ReadError::Archive(FileError::new(
                &self.name,
                format!("unpacks to more than {} MB: the rest was not read", mb(MAX_TOTAL_BYTES)),
            )));
        }
        Ok(data)
    }
}
