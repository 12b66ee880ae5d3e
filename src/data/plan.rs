//! Where each file of a drop goes, decided from all its paths at once, and which folders held no image.

use std::collections::BTreeSet;

use super::paths::{self, FileKind};
use super::{FileError, IngestReport, MAX_CLASS_NAME_CHARS, class_name_is_cut, clean_class_name, clean_file_name};

/// Where a dropped file goes, decided for the whole drop at once (the dataset's root folder is recognised
/// from all the paths together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `class` is already cleaned; `name` is the path below the class folder.
    Class {
        class: String,
        name: String,
    },
    Zip,
    /// Hidden or system file, or a folder entry: nothing to say about it.
    Skip,
    Refused(String),
}

pub(super) fn is_folder(path: &str) -> bool {
    path.ends_with('/')
}

/// Places every path of a drop. The class is the first folder, once a folder shared by every image is
/// stripped (`mydata/cats/a.jpg` → `cats`, whether the user dropped `mydata` or `cats` and `dogs`). Deeper
/// folders count in their top folder's class (one warning says so). Hidden files and folder entries are
/// skipped; zips are opened separately.
pub fn plan_folder(paths: &[&str]) -> (Vec<Placement>, IngestReport) {
    let mut report = IngestReport::default();
    let mut plan = vec![Placement::Skip; paths.len()];
    let mut kept: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        if paths::is_hidden(path) || is_folder(path) {
            continue;
        }
        match paths::components(path) {
            Some(parts) if !parts.is_empty() => kept.push((i, parts)),
            _ => {
                plan[i] = Placement::Refused(
                    "refused: it would land outside the dataset (its path is absolute or contains '..')".into(),
                )
            }
        }
    }
    // The root is judged on image files only, so a stray note beside the dataset folder does not hide it.
    let images: Vec<&Vec<String>> = kept
        .iter()
        .map(|(_, parts)| parts)
        .filter(|parts| {
            matches!(
                paths::kind_of(&parts.join("/")),
                FileKind::Image | FileKind::UnsupportedImage(_)
            )
        })
        .collect();
    let judged: Vec<&Vec<String>> = if images.is_empty() {
        kept.iter().map(|(_, p)| p).collect()
    } else {
        images
    };
    let root = judged
        .first()
        .and_then(|p| p.first())
        .cloned()
        .filter(|root| judged.iter().all(|p| p.len() >= 2 && &p[0] == root) && judged.iter().any(|p| p.len() >= 3));
    let mut nested = BTreeSet::new();
    let mut first_nested = None;
    let mut cut = BTreeSet::new();
    for (i, mut parts) in kept {
        if root.as_ref().is_some_and(|r| parts.len() >= 2 && &parts[0] == r) {
            parts.remove(0);
        }
        plan[i] = if let FileKind::Zip = paths::kind_of(paths[i]) {
            Placement::Zip
        } else if parts.len() < 2 {
            Placement::Refused("not in a class folder: put each image in a sub-folder named after its class".into())
        } else if let Some(class) = clean_class_name(&parts[0]) {
            if class_name_is_cut(&parts[0]) && cut.insert(class.clone()) {
                report.warnings.push(FileError::new(
                    paths[i],
                    format!(
                        "the folder name is longer than {MAX_CLASS_NAME_CHARS} characters: the class is named “{class}”"
                    ),
                ));
            }
            if parts.len() > 2 {
                nested.insert(class.clone());
                first_nested.get_or_insert(i);
            }
            Placement::Class {
                class,
                name: clean_file_name(&parts[1..].join("/")),
            }
        } else {
            Placement::Refused(format!(
                "its folder name “{}” is empty once invisible characters are removed: rename the folder",
                parts[0].escape_debug()
            ))
        };
    }
    if let Some(i) = first_nested {
        let classes: Vec<String> = nested.into_iter().map(|c| format!("“{c}”")).collect();
        report.warnings.push(FileError::new(
            paths[i],
            format!(
                "images in sub-folders are counted in the class of their top folder ({})",
                classes.join(", ")
            ),
        ));
    }
    (plan, report)
}

/// After a drop: "no images found" when nothing in it was an image, else an error per folder entry with no
/// image below it (an empty class folder). `found[i]` says whether `paths[i]` held images.
pub(super) fn report_missing_images(paths: &[&str], found: &[bool], source: Option<&str>, report: &mut IngestReport) {
    if !found.contains(&true) {
        // Name the folder that was dropped when every path shares one.
        let visible: Vec<&str> = paths.iter().copied().filter(|p| !paths::is_hidden(p)).collect();
        let first = visible
            .first()
            .and_then(|p| p.split('/').next())
            .filter(|f| !f.is_empty());
        let shared = first.filter(|f| {
            visible
                .iter()
                .all(|p| p.split('/').next() == Some(*f) && p.contains('/'))
        });
        let (file, problem) = match (source, shared) {
            (Some(zip), _) => (zip, "no images found in the zip"),
            (None, Some(folder)) => (folder, "no images found in the folder"),
            (None, None) => ("dropped files", "no images found"),
        };
        report.errors.push(FileError::new(file, problem));
        return;
    }
    for folder in paths.iter().filter(|p| is_folder(p) && !paths::is_hidden(p)) {
        let has_images = paths.iter().zip(found).any(|(p, &f)| f && p.starts_with(folder));
        if !has_images {
            let shown = folder.trim_end_matches('/');
            let file = source.map_or(shown.to_string(), |zip| format!("{zip}: {shown}"));
            report
                .errors
                .push(FileError::new(file, "no images found in this folder"));
        }
    }
}

/// For a drop added file by file with [`Dataset::add_planned`]: "no images found" for the drop or for each
/// folder with no image below it, as [`Dataset::add_folder_files`] reports. `found[i]` is what `add_planned`
/// said for `paths[i]`.
pub fn missing_images(paths: &[&str], found: &[bool]) -> IngestReport {
    let mut report = IngestReport::default();
    report_missing_images(paths, found, None, &mut report);
    report
}
