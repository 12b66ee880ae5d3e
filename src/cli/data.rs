//! The images to train on, read as the page reads a drop: a folder of class folders, a `.zip` of them, or a
//! `.ajuste` project (with its options). Files the page would skip are listed with its messages, and skipped.

use std::path::Path;

use ajuste::data::{Dataset, IngestReport, InputFile};
use ajuste::options::TrainOptions;
use ajuste::project;

/// The dataset at `path`, and the options when it is a project.
pub fn load(path: &Path) -> Result<(Dataset, Option<TrainOptions>), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut dataset = Dataset::default();
    let report = if path.is_dir() {
        let mut files = Vec::new();
        walk(path, &name, &mut files)?;
        dataset.add_folder_files(files)
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot be read ({e})", path.display()))?;
        if name.to_lowercase().ends_with(&format!(".{}", project::EXTENSION)) {
            let project = project::read(&bytes).map_err(|e| format!("{name}: {e}"))?;
            return Ok((project.dataset, Some(project.options)));
        }
        dataset.add_zip(&name, &bytes)
    };
    tell(&report);
    Ok((dataset, None))
}

/// Every file below `dir`, named as a dropped folder's are (`folder/class/image.jpg`).
fn walk(dir: &Path, shown: &str, files: &mut Vec<InputFile>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot be listed ({e})", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: cannot be listed ({e})", dir.display()))?;
        let path = entry.path();
        let name = format!("{shown}/{}", entry.file_name().to_string_lossy());
        if path.is_dir() {
            walk(&path, &name, files)?;
        } else {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: cannot be read ({e})", path.display()))?;
            files.push(InputFile { path: name, bytes });
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
