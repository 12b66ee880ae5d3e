//! Turns what the user dropped or picked into `(relative path, bytes)` pairs for the ingest code.
//!
//! A dropped folder is walked with `webkitGetAsEntry`; `readEntries` returns at most ~100 entries per call,
//! so it is called until it returns none. Entries must be taken during the drop event itself: the
//! DataTransfer is emptied once the handler returns.

use ajuste::data::InputFile;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DataTransfer, File, FileList, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

use super::browser::js_error;

/// A file the browser gave us, not yet read.
pub struct PickedFile {
    pub path: String,
    pub file: File,
}

/// Synchronously takes the entries out of a drop event (call inside the handler).
pub fn entries_from_drop(transfer: &DataTransfer) -> (Vec<FileSystemEntry>, Vec<File>) {
    let items = transfer.items();
    let mut entries = Vec::new();
    let mut loose = Vec::new();
    for i in 0..items.length() {
        let Some(item) = items.get(i) else { continue };
        if item.kind() != "file" {
            continue;
        }
        match item.webkit_get_as_entry() {
            Ok(Some(entry)) => entries.push(entry),
            _ => {
                if let Ok(Some(file)) = item.get_as_file() {
                    loose.push(file);
                }
            }
        }
    }
    (entries, loose)
}

async fn callback_promise(start: impl FnOnce(&js_sys::Function, &js_sys::Function)) -> Result<JsValue, String> {
    let mut start = Some(start);
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        if let Some(start) = start.take() {
            start(&resolve, &reject);
        }
    });
    JsFuture::from(promise).await.map_err(js_error)
}

async fn entry_file(entry: &FileSystemFileEntry) -> Result<File, String> {
    let value = callback_promise(|ok, err| entry.file_with_callback_and_callback(ok, err)).await?;
    Ok(value.unchecked_into())
}

async fn read_all_entries(dir: &FileSystemDirectoryEntry) -> Result<Vec<FileSystemEntry>, String> {
    let reader = dir.create_reader();
    let mut all = Vec::new();
    loop {
        let batch = callback_promise(|ok, err| {
            let _ = reader.read_entries_with_callback_and_callback(ok, err);
        })
        .await?;
        let batch: js_sys::Array = batch.unchecked_into();
        if batch.length() == 0 {
            return Ok(all);
        }
        all.extend(batch.iter().map(|e| e.unchecked_into::<FileSystemEntry>()));
    }
}

/// Walks dropped entries (folders recursively). Paths keep the dropped folder's name as first component.
pub async fn walk_entries(roots: Vec<FileSystemEntry>) -> (Vec<PickedFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut stack: Vec<(String, FileSystemEntry)> = roots.into_iter().map(|e| (e.name(), e)).collect();
    let mut empty_dirs = Vec::new();
    while let Some((path, entry)) = stack.pop() {
        if entry.is_directory() {
            let dir: FileSystemDirectoryEntry = entry.unchecked_into();
            match read_all_entries(&dir).await {
                Ok(children) if children.is_empty() => empty_dirs.push(path),
                Ok(children) => {
                    stack.extend(children.into_iter().map(|c| (format!("{path}/{}", c.name()), c)));
                }
                Err(e) => problems.push(format!("{path}: could not read the folder ({e})")),
            }
        } else {
            let file_entry: FileSystemFileEntry = entry.unchecked_into();
            match entry_file(&file_entry).await {
                Ok(file) => files.push(PickedFile { path, file }),
                Err(e) => problems.push(format!("{path}: could not read the file ({e})")),
            }
        }
    }
    for dir in empty_dirs {
        problems.push(format!("{dir}: the folder is empty"));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, problems)
}

/// Files of an `<input type=file>`; with `webkitdirectory` their relative path holds the folder layout.
pub fn files_from_list(list: &FileList) -> Vec<PickedFile> {
    (0..list.length())
        .filter_map(|i| list.get(i))
        .map(|file| {
            let relative = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
                .ok()
                .and_then(|v| v.as_string())
                .filter(|p| !p.is_empty());
            PickedFile {
                path: relative.unwrap_or_else(|| file.name()),
                file,
            }
        })
        .collect()
}

pub async fn read_file(picked: PickedFile) -> Result<InputFile, String> {
    let buffer = JsFuture::from(picked.file.array_buffer())
        .await
        .map_err(|e| format!("{}: could not read the file ({})", picked.path, js_error(e)))?;
    Ok(InputFile {
        path: picked.path,
        bytes: js_sys::Uint8Array::new(&buffer).to_vec(),
    })
}

/// `File.size` without reading the file (a cheap size check before reading it all).
pub fn size_of(file: &File) -> f64 {
    file.size()
}
