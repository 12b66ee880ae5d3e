//! Reading a dropped `.zip` safely: entries that escape the archive's root are refused, and sizes are capped
//! both as declared and as actually inflated (a zip bomb can lie about its sizes).

use std::io::{Cursor, Read};

use super::ingest::{FileError, InputFile, MAX_FILE_BYTES};
use super::paths;

pub const MAX_ENTRIES: usize = 20_000;
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;

/// The archive's files as `(path inside the archive, bytes)`; entries refused one by one come back as errors beside them.
/// An archive that cannot be used at all is one error naming it.
pub fn read_entries(zip_name: &str, bytes: &[u8]) -> Result<(Vec<InputFile>, Vec<FileError>), FileError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| FileError::new(zip_name, format!("not a readable zip archive ({e})")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(FileError::new(
            zip_name,
            format!("too many entries ({}; the limit is {MAX_ENTRIES})", archive.len()),
        ));
    }
    let mut declared = 0u64;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| FileError::new(zip_name, format!("corrupt zip ({e})")))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > MAX_TOTAL_BYTES {
        return Err(FileError::new(
            zip_name,
            format!(
                "unpacks to {} MB, over the {} MB limit",
                declared >> 20,
                MAX_TOTAL_BYTES >> 20
            ),
        ));
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                errors.push(FileError::new(zip_name, format!("entry {i} cannot be read ({e})")));
                continue;
            }
        };
        let name = match entry.name() {
            Ok(name) => name.to_string(),
            Err(e) => {
                errors.push(FileError::new(
                    zip_name,
                    format!("entry {i} has an unreadable name ({e})"),
                ));
                continue;
            }
        };
        let shown = format!("{zip_name}: {name}");
        if entry.is_dir() || paths::is_hidden(&name) {
            continue;
        }
        if entry.enclosed_name().is_none() || paths::components(&name).is_none() {
            errors.push(FileError::new(
                shown,
                "refused: the entry's path points outside the archive",
            ));
            continue;
        }
        if entry.size() > MAX_FILE_BYTES as u64 {
            errors.push(FileError::new(
                shown,
                format!("too large ({} MB unpacked)", entry.size() >> 20),
            ));
            continue;
        }
        // Read one byte past the cap: more than declared means the header lied.
        let mut data = Vec::new();
        if let Err(e) = (&mut entry).take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut data) {
            errors.push(FileError::new(shown, format!("corrupt entry ({e})")));
            continue;
        }
        if data.len() > MAX_FILE_BYTES {
            errors.push(FileError::new(shown, "unpacks to more than its declared size: refused"));
            continue;
        }
        total += data.len() as u64;
        if total > MAX_TOTAL_BYTES {
            return Err(FileError::new(
                zip_name,
                format!("unpacks to more than {} MB: refused", MAX_TOTAL_BYTES >> 20),
            ));
        }
        files.push(InputFile {
            path: name,
            bytes: data,
        });
    }
    Ok((files, errors))
}
