//! Ingest of real photos laid out as the user drops them, and every kind of bad input: each is refused with
//! a message naming the file, and nothing already loaded is lost.

use std::io::{Cursor, Write};

use ajuste::data::split::stratified_split;
use ajuste::data::{Dataset, InputFile};

const GCOMPRIS3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/gcompris3");

fn photos(class: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let dir = format!("{GCOMPRIS3}/{class}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| n.ends_with(".jpg"))
        .take(n)
        .map(|n| (n.clone(), std::fs::read(format!("{dir}/{n}")).unwrap()))
        .collect()
}

fn folder(root: &str, per_class: usize) -> Vec<InputFile> {
    ["animal", "monument", "tool"]
        .iter()
        .flat_map(|c| {
            photos(c, per_class).into_iter().map(move |(n, bytes)| InputFile {
                path: format!("{root}{c}/{n}"),
                bytes,
            })
        })
        .collect()
}

/// A loaded dataset of 3 classes × 3 photos, to check that bad input leaves it alone.
fn loaded() -> Dataset {
    let mut d = Dataset::default();
    let r = d.add_folder_files(folder("", 3));
    assert_eq!((r.added, r.errors.len()), (9, 0), "{r:?}");
    d
}

fn file(path: &str, bytes: &[u8]) -> InputFile {
    InputFile {
        path: path.into(),
        bytes: bytes.to_vec(),
    }
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = zip::ZipWriter::new(Cursor::new(&mut out));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(bytes).unwrap();
            }
        }
        w.finish().unwrap();
    }
    out
}

/// Asserts one error naming `file` and an unchanged dataset.
fn assert_refused(before: &Dataset, after: &Dataset, report: &ajuste::data::IngestReport, file: &str) {
    assert!(
        report.errors.iter().any(|e| e.file.contains(file)),
        "no error names {file}: {:?}",
        report.errors
    );
    assert!(report.errors.iter().all(|e| !e.problem.is_empty()));
    assert_eq!(before, after, "a bad file changed what was loaded");
}

#[test]
fn folder_layout_with_and_without_a_root_folder() {
    for root in ["", "my dataset/"] {
        let mut d = Dataset::default();
        let r = d.add_folder_files(folder(root, 4));
        assert_eq!(r.added, 12, "{r:?}");
        assert_eq!(d.class_names(), ["animal", "monument", "tool"]);
        assert_eq!(d.labels(), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        assert!(
            d.classes
                .iter()
                .all(|c| c.samples.iter().all(|s| s.pixels.len() == 224 * 224 * 3))
        );
        assert!(d.check_trainable().is_ok());
    }
}

#[test]
fn zip_with_the_same_layout() {
    let entries: Vec<(String, Vec<u8>)> = folder("set/", 2).into_iter().map(|f| (f.path, f.bytes)).collect();
    let mut refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    refs.push(("set/", b""));
    refs.push(("__MACOSX/set/._a.jpg", b"junk"));
    let mut d = Dataset::default();
    let r = d.add_zip("photos.zip", &zip(&refs));
    assert_eq!((r.added, r.errors.len()), (6, 0), "{r:?}");
    assert_eq!(d.class_names(), ["animal", "monument", "tool"]);
}

#[test]
fn non_images_corrupt_truncated_and_unsupported_files_are_refused_by_name() {
    let jpg = &photos("tool", 1)[0].1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("tool/notes.txt", b"hello".to_vec()),
        ("tool/truncated.jpg", jpg[..jpg.len() / 3].to_vec()),
        (
            "tool/random.png",
            (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("tool/photo.heic", b"....ftypheic".to_vec()),
        ("tool/empty.jpg", Vec::new()),
    ];
    for (path, bytes) in cases {
        let mut d = loaded();
        let before = d.clone();
        let r = d.add_folder_files(vec![file(path, &bytes)]);
        let name = path.rsplit('/').next().unwrap();
        assert_refused(&before, &d, &r, name);
    }
}

#[test]
fn huge_declared_dimensions_are_refused_without_decoding() {
    // A valid PNG header claiming 100000×100000 pixels (40 GB decoded), then nothing.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(100_000u32.to_be_bytes());
    png.extend(100_000u32.to_be_bytes());
    png.extend([8, 2, 0, 0, 0]);
    let crc = {
        let mut h = crc32fast::Hasher::new();
        h.update(&png[12..29]);
        h.finalize()
    };
    png.extend(crc.to_be_bytes());
    // A tiny IDAT and IEND, so the header parses; the pixel data would be 30 GB.
    for (kind, data) in [(&b"IDAT"[..], &b"\x78\x9c\x03\x00\x00\x00\x00\x01"[..]), (b"IEND", b"")] {
        png.extend((data.len() as u32).to_be_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(kind);
        h.update(data);
        png.extend(kind);
        png.extend(data);
        png.extend(h.finalize().to_be_bytes());
    }
    let mut d = loaded();
    let before = d.clone();
    let start = std::time::Instant::now();
    let r = d.add_folder_files(vec![file("animal/bomb.png", &png)]);
    assert_refused(&before, &d, &r, "bomb.png");
    assert!(r.errors[0].problem.contains("too large"), "{:?}", r.errors);
    assert!(start.elapsed().as_secs() < 5);
}

#[test]
fn files_outside_class_folders_and_empty_drops() {
    let mut d = loaded();
    let before = d.clone();
    let mut files = folder("root/", 1);
    files.push(file("root/stray.jpg", &photos("animal", 1)[0].1));
    let r = d.add_folder_files(files);
    assert!(
        r.errors
            .iter()
            .any(|e| e.file == "root/stray.jpg" && e.problem.contains("class folder")),
        "{r:?}"
    );
    assert_eq!(r.added, 0, "the three photos are already loaded under the same names");
    assert_eq!(r.warnings.len(), 3, "{r:?}");
    assert_eq!(before, d);
    // An empty zip / a zip with no images says so, naming the zip.
    let r = d.add_zip("empty.zip", &zip(&[("nothing/", b"")]));
    assert_refused(&before, &d, &r, "empty.zip");
    assert!(r.errors[0].problem.contains("no images"));
}

#[test]
fn too_few_classes_or_images_block_training_with_a_reason() {
    let mut d = Dataset::default();
    assert!(d.check_trainable().is_err());
    d.add_folder_files(
        folder("", 2)
            .into_iter()
            .filter(|f| f.path.starts_with("animal"))
            .collect(),
    );
    let problems = d.check_trainable().unwrap_err();
    assert!(
        problems[0].contains("animal") && problems[0].contains("2 classes"),
        "{problems:?}"
    );
    d.add_to_class("tool", vec![file("hammer.jpg", &photos("tool", 1)[0].1)]);
    let problems = d.check_trainable().unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("“tool” has 1 image")),
        "{problems:?}"
    );
}

#[test]
fn odd_names_rename_and_remove() {
    let mut d = loaded();
    let r = d.add_folder_files(vec![file("\u{7}  big\tcats  /x.jpg", &photos("animal", 1)[0].1)]);
    assert_eq!(r.added, 1, "{r:?}");
    assert_eq!(d.class_names()[3], "big cats");
    let before = d.clone();
    let r = d.add_folder_files(vec![file("\u{1}\u{2}/y.jpg", &photos("animal", 1)[0].1)]);
    assert_refused(&before, &d, &r, "y.jpg");
    assert!(d.rename_class(3, "  ").is_err());
    assert!(d.rename_class(3, "animal").is_err(), "duplicate names are refused");
    d.rename_class(3, "felines").unwrap();
    assert_eq!(d.class_names()[3], "felines");
    d.remove_class(3);
    assert_eq!(d, loaded());
}

#[test]
fn unsafe_and_oversized_zips_are_refused() {
    let jpg = photos("animal", 1).remove(0).1;
    // An entry escaping the archive's root.
    let mut d = loaded();
    let before = d.clone();
    let r = d.add_zip("evil.zip", &zip(&[("../evil.jpg", &jpg), ("a/b/../../../x.jpg", &jpg)]));
    assert_refused(&before, &d, &r, "evil.jpg");
    assert!(r.errors.iter().any(|e| e.problem.contains("outside")), "{r:?}");
    // A zip whose entries declare more than the limit when unpacked (deflate compresses zeros ~1000:1).
    let zeros = vec![0u8; 70 << 20];
    let r = d.add_zip("bomb.zip", &zip(&[("a/big.jpg", &zeros)]));
    assert_refused(&before, &d, &r, "bomb.zip");
    // Not a zip at all.
    let r = d.add_zip("broken.zip", b"PK\x03\x04 not really");
    assert_refused(&before, &d, &r, "broken.zip");
}

#[test]
fn stratified_split_of_a_dataset() {
    let mut d = Dataset::default();
    d.add_folder_files(folder("", 5));
    let labels = d.labels();
    let s = stratified_split(&labels, 0.2, 0);
    for c in 0..3 {
        assert_eq!(s.val.iter().filter(|&&i| labels[i] == c).count(), 1);
        assert_eq!(s.train.iter().filter(|&&i| labels[i] == c).count(), 4);
    }
    assert_eq!(s, stratified_split(&labels, 0.2, 0));
}
