//! The images to train on, read as the page reads a drop: a folder of class folders, a `.zip` of them, or a
//! `.ajuste` project (with its options). Files the page would skip are listed with its messages, and skipped.
//! A folder's images stay on disk (`disk.rs`): memory holds their keys and paths, not their pixels. A `.zip` or
//! a `.ajuste` is one file read whole, as the page reads it, and its images are held in memory.

use std::path::{Path, PathBuf};

use ajuste::data::{Dataset, IngestReport};
use ajuste::options::TrainOptions;
use ajuste::project;

use super::disk::DiskImages;

/// The dataset at `path`, the options when it is a project, and where its images kept on disk are.
pub fn load(path: &Path) -> Result<(Dataset, Option<TrainOptions>, DiskImages), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if path.is_dir() {
        let (mut files, mut empty) = (Vec::new(), Vec::new());
        walk(path, &name, &mut files, &mut empty)?;
        let (dataset, report, images) = DiskImages::ingest(files, &empty);
        tell(&report);
        return Ok((dataset, None, images));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot be read ({e})", path.display()))?;
    if name.to_lowercase().ends_with(&format!(".{}", project::EXTENSION)) {
        let project = project::read(&bytes).map_err(|e| format!("{name}: {e}"))?;
        return Ok((project.dataset, Some(project.options), DiskImages::default()));
    }
    let mut dataset = Dataset::default();
    tell(&dataset.add_zip(&name, &bytes));
    Ok((dataset, None, DiskImages::default()))
}

/// Every file below `dir` (named as a dropped folder's are, `folder/class/image.jpg`, with its path on disk) and
/// every empty folder: listed only, not read.
fn walk(dir: &Path, shown: &str, files: &mut Vec<(String, PathBuf)>, empty: &mut Vec<String>) -> Result<(), String> {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: cannot be listed ({e})", dir.display()))?;
    if entries.is_empty() {
        empty.push(shown.to_string());
    }
    for entry in entries {
        let path = entry.path();
        let name = format!("{shown}/{}", entry.file_name().to_string_lossy());
        if path.is_dir() {
            walk(&path, &name, files, empty)?;
        } else {
            files.push((name, path));
        }
    }
    Ok(())
}

fn tell(report: &IngestReport) {
    for error in &report.errors {
        eprintln!("skipped {error}");
    }
    for warning in &report.warnings {
        eprintln!("note: {warning}");
    }
    if report.skipped > 0 {
        eprintln!("{} images already in their class were left out", report.skipped);
    }
}
