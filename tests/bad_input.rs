//! The bad-input corpus (tests/fixtures/bad/cases.json, issue 11): every case through the core, with the
//! message it must give and a check that the dataset already loaded is unchanged; and every corpus file through
//! every reader (the fuzz targets' seeds, replayed: none may panic).

use std::path::{Path, PathBuf};

use ajuste::data::{Dataset, IngestReport, InputFile, snapshot};
use ajuste::model::read_backbone;
use ajuste::preprocess::prepare_rgb;
use serde_json::Value;

const BAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bad");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/sample");

/// The large files are made by scripts/make_bad_inputs.py (standard library only, seconds) when missing.
fn ensure_large() {
    static MADE: std::sync::Once = std::sync::Once::new();
    MADE.call_once(|| {
        if !Path::new(BAD).join("large/zip_bomb_lying.zip").exists() {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make_bad_inputs.py");
            let status = std::process::Command::new("python3").arg(script).status();
            assert!(status.is_ok_and(|s| s.success()), "python3 {script} failed");
        }
    });
}

fn bytes_of(from: &Value) -> Vec<u8> {
    let Some(from) = from.as_str() else {
        return Vec::new(); // a folder entry
    };
    let path = match from.strip_prefix("sample:") {
        Some(photo) => PathBuf::from(SAMPLE).join(photo),
        None => {
            ensure_large();
            PathBuf::from(BAD).join(from)
        }
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(BAD).join("cases.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// The dataset the drops land on: animal, monument and tool with their first 3 sample photos (by name).
fn loaded() -> Dataset {
    let mut files = Vec::new();
    for class in ["animal", "monument", "tool"] {
        let mut names: Vec<String> = std::fs::read_dir(Path::new(SAMPLE).join(class))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".jpg"))
            .collect();
        names.sort();
        for name in &names[..3] {
            files.push(InputFile {
                path: format!("{class}/{name}"),
                bytes: std::fs::read(Path::new(SAMPLE).join(class).join(name)).unwrap(),
            });
        }
    }
    let mut d = Dataset::default();
    let r = d.add_folder_files(files);
    assert_eq!((r.added, r.errors.len(), r.warnings.len()), (9, 0, 0), "{r:?}");
    d
}

fn check_reported(id: &str, kind: &str, expected: &Value, reported: &[ajuste::data::FileError]) {
    let expected = expected.as_array().unwrap();
    for want in expected {
        let (file, message) = (want["file"].as_str().unwrap(), want["message"].as_str().unwrap());
        assert!(
            reported
                .iter()
                .any(|e| e.file.contains(file) && e.problem.contains(message)),
            "{id}: no {kind} for “{file}” containing “{message}”; got {reported:#?}"
        );
    }
    assert_eq!(
        reported.len(),
        expected.len(),
        "{id}: {kind}s other than expected: {reported:#?}"
    );
}

fn run_drop(case: &Value) {
    let id = case["id"].as_str().unwrap();
    let files: Vec<InputFile> = case["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| InputFile {
            path: f["path"].as_str().unwrap().to_string(),
            bytes: bytes_of(&f["from"]),
        })
        .collect();
    let before = if case["start"] == "empty" {
        Dataset::default()
    } else {
        loaded()
    };
    let mut after = before.clone();
    let report: IngestReport = after.add_folder_files(files);
    check_reported(id, "error", &case["errors"], &report.errors);
    check_reported(id, "warning", &case["warnings"], &report.warnings);
    assert_eq!(
        report.added,
        case["added"].as_u64().unwrap() as usize,
        "{id}: added; {report:#?}"
    );
    assert_eq!(
        report.skipped,
        case["skipped"].as_u64().unwrap() as usize,
        "{id}: skipped"
    );
    assert_eq!(after.num_images(), before.num_images() + report.added, "{id}");
    // What was loaded is still there, in order, under the same names; new images only come after it.
    for (old, new) in before.classes.iter().zip(&after.classes) {
        assert_eq!(old.name, new.name, "{id}");
        assert!(
            new.samples.starts_with(&old.samples),
            "{id}: class “{}” changed",
            old.name
        );
    }
    if let Some(classes) = case["classes"].as_array() {
        let new: Vec<&str> = after.classes[before.classes.len()..]
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let want: Vec<&str> = classes.iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(new, want, "{id}: new classes");
    }
    if let Some(trainable) = case["trainable"].as_str() {
        let problems = after.check_trainable().unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains(trainable)),
            "{id}: training check says {problems:?}"
        );
    }
}

#[test]
fn every_case_gives_its_message_and_leaves_the_loaded_dataset_alone() {
    let cases = cases();
    assert!(cases.len() >= 25, "the corpus has {} cases", cases.len());
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let bytes = || bytes_of(&case["files"][0]["from"]);
        // Only drops check their messages per file (`want`); every other case must name its message, or any
        // error would contain the empty one.
        let message = case["message"].as_str().unwrap_or_default();
        if case["via"] != "drop" {
            assert!(message.len() > 3, "{id}: the case names no message to expect");
        }
        match case["via"].as_str().unwrap() {
            "drop" => run_drop(case),
            "snapshot" => {
                let error = snapshot::decode(&bytes()).unwrap_err();
                assert!(error.contains(message), "{id}: {error}");
            }
            "weights" => {
                let error = read_backbone(&bytes()).unwrap_err().to_string();
                assert!(error.contains(message), "{id}: {error}");
            }
            other => panic!("{id}: unknown via {other}"),
        }
    }
}

/// Every corpus file through every reader, whatever it was meant for: a refusal is fine, a panic is not.
/// This is what CI runs instead of fuzzing (crashes found by scripts/fuzz.sh become files here).
#[test]
fn every_corpus_file_through_every_reader() {
    ensure_large();
    let mut seen = 0;
    for dir in ["files", "large"] {
        for entry in std::fs::read_dir(Path::new(BAD).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let _ = prepare_rgb(&bytes);
            let _ = snapshot::decode(&bytes);
            let _ = read_backbone(&bytes);
            let mut d = loaded();
            let before = d.clone();
            let r = d.add_zip("x.zip", &bytes);
            if r.added == 0 {
                assert_eq!(d, before, "{}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 30, "{seen} files");
}
