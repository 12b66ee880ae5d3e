//! Ingest of real photos laid out as users drop them, and every kind of bad input: each is refused with a
//! message naming the file, and nothing already loaded is lost.

use std::io::{Cursor, Write};

use ajuste::data::ingest::ZipDrop;
use ajuste::data::split::stratified_split;
use ajuste::data::{Dataset, IngestReport, InputFile};

/// The bundled sample: 12 photos each of animal, monument and tool.
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/sample");
/// A few photos of two more classes: fish (4) and renewable_energy (2).
const EXTRA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images");

/// The first `n` photos of a class of the set in folder `set`, as (file name, bytes), in name order.
fn photos(set: &str, class: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let dir = format!("{set}/{class}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    assert!(names.len() >= n, "{dir} has {} photos, {n} wanted", names.len());
    names
        .into_iter()
        .take(n)
        .map(|n| (n.clone(), std::fs::read(format!("{dir}/{n}")).unwrap()))
        .collect()
}

/// A tool photo that [`loaded`] does not hold (images are told apart by content: a loaded one is a duplicate).
fn jpg() -> Vec<u8> {
    photo(5)
}

/// The `i`-th tool photo by name; 0 to 2 are loaded by [`loaded`].
fn photo(i: usize) -> Vec<u8> {
    photos(SAMPLE, "tool", i + 1).remove(i).1
}

/// A folder drop of `per_class` photos of each class, paths starting with `root`.
fn folder(set: &str, classes: &[&str], root: &str, per_class: usize) -> Vec<InputFile> {
    classes
        .iter()
        .flat_map(|c| {
            photos(set, c, per_class).into_iter().map(move |(n, bytes)| InputFile {
                path: format!("{root}{c}/{n}"),
                bytes,
            })
        })
        .collect()
}

fn sample(root: &str, per_class: usize) -> Vec<InputFile> {
    folder(SAMPLE, &["animal", "monument", "tool"], root, per_class)
}

/// A loaded dataset of 3 classes × 3 photos, to check that bad input leaves it alone.
fn loaded() -> Dataset {
    let mut d = Dataset::default();
    let r = d.add_folder_files(sample("", 3));
    assert_eq!((r.added, r.errors.len(), r.warnings.len()), (9, 0, 0), "{r:?}");
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

/// Rewrites the uncompressed size in every central-directory record of a zip (what a bomb lies about).
fn declare_size(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
    let mut i = 0;
    while i + 28 <= zip.len() {
        if zip[i..i + 4] == *b"PK\x01\x02" {
            zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
    zip
}

/// Asserts an error naming `file` and an unchanged dataset.
fn assert_refused(before: &Dataset, after: &Dataset, report: &IngestReport, file: &str) {
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.file.contains(file) && !e.problem.is_empty()),
        "no error names {file}: {:?}",
        report.errors
    );
    assert_eq!(report.added, 0, "{report:?}");
    assert_eq!(before, after, "a bad file changed what was loaded");
}

/// The problem reported for `file` (an exact match first, else the first error whose file contains it).
fn problem_for<'a>(report: &'a IngestReport, file: &str) -> &'a str {
    let errors = &report.errors;
    errors
        .iter()
        .find(|e| e.file == file)
        .or_else(|| errors.iter().find(|e| e.file.contains(file)))
        .map_or("", |e| e.problem.as_str())
}

#[test]
fn folder_layout_with_and_without_a_root_folder() {
    for root in ["", "my dataset/"] {
        let mut d = Dataset::default();
        let r = d.add_folder_files(sample(root, 4));
        assert_eq!((r.added, r.errors.len(), r.warnings.len()), (12, 0, 0), "{r:?}");
        assert_eq!(d.class_names(), ["animal", "monument", "tool"]);
        assert_eq!(d.labels(), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        assert!(
            d.classes
                .iter()
                .flat_map(|c| &c.samples)
                .all(|s| s.pixels.len() == 224 * 224 * 3)
        );
        assert!(d.check_trainable().is_ok());
        // A second drop adds classes after the loaded ones and leaves those alone.
        let before = d.classes.clone();
        let r = d.add_folder_files(folder(EXTRA, &["renewable_energy", "fish"], "extra/", 2));
        assert_eq!((r.added, r.errors.len()), (4, 0), "{r:?}");
        assert_eq!(
            d.class_names(),
            ["animal", "monument", "tool", "fish", "renewable_energy"]
        );
        assert_eq!(d.classes[..3], before[..]);
        assert_eq!(d.num_images(), 16);
    }
}

#[test]
fn zip_with_the_same_layout() {
    let entries: Vec<(String, Vec<u8>)> = sample("set/", 2).into_iter().map(|f| (f.path, f.bytes)).collect();
    let mut refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    refs.extend([
        ("set/", &b""[..]),
        ("set/animal/", b""),
        ("__MACOSX/set/animal/._a.jpg", b"junk"),
        ("set/.DS_Store", b"junk"),
    ]);
    let mut d = Dataset::default();
    let r = d.add_zip("photos.zip", &zip(&refs));
    assert_eq!((r.added, r.errors.len(), r.warnings.len()), (6, 0, 0), "{r:?}");
    assert_eq!(d.class_names(), ["animal", "monument", "tool"]);
    // Without the root folder, and dropped among other files: the same classes.
    let flat: Vec<(&str, &[u8])> = refs.iter().map(|(n, b)| (n.trim_start_matches("set/"), *b)).collect();
    let mut d2 = Dataset::default();
    let r = d2.add_folder_files(vec![file("photos.zip", &zip(&flat[..6]))]);
    assert_eq!((r.added, r.errors.len()), (6, 0), "{r:?}");
    assert_eq!(d, d2);
    // A batch at a time (the page stores each batch before the next): the same dataset and report.
    let bytes = zip(&refs);
    let (mut d3, mut r3) = (Dataset::default(), IngestReport::default());
    let mut drop = ZipDrop::open("photos.zip", &bytes, &mut r3).unwrap();
    let mut seen = Vec::new();
    while drop.add_next(&mut d3, 2, &mut r3) {
        seen.push((drop.progress(), d3.num_images()));
    }
    drop.finish(&mut r3);
    assert_eq!(seen[0], ((2, 8), 0), "the folder entries come first: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[1].1 >= w[0].1 && w[1].0.0 == w[0].0.0 + 2),
        "{seen:?}"
    );
    assert_eq!((d3, r3.added, r3.errors.len()), (d, 6, 0));
}

#[test]
fn non_images_corrupt_truncated_and_unsupported_files_are_refused_by_name() {
    let jpg = jpg();
    let random: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("tool/notes.txt", b"hello".to_vec(), "not an image"),
        (
            "tool/truncated.jpg",
            jpg[..jpg.len() / 3].to_vec(),
            "corrupt or truncated",
        ),
        (
            "tool/cut-at-the-end.jpg",
            jpg[..jpg.len() - 2].to_vec(),
            "corrupt or truncated",
        ),
        ("tool/random.png", random, "not an image"),
        ("tool/photo.heic", b"\0\0\0\x18ftypheic\0\0\0\0".to_vec(), "HEIC"),
        ("tool/renamed-heic.jpg", b"\0\0\0\x18ftypheic\0\0\0\0".to_vec(), "HEIC"),
        (
            "tool/scan.tif",
            b"II*\0\x08\0\0\0\0\0".to_vec(),
            "the TIFF format is not supported: convert it to JPEG or PNG",
        ),
        (
            "tool/scan-named.png",
            b"II*\0\x08\0\0\0\0\0".to_vec(),
            "the TIFF format is not supported",
        ),
        ("tool/empty.jpg", Vec::new(), "empty"),
        ("tool/huge.jpg", vec![0; 65 << 20], "too large"),
    ];
    for (path, bytes, expected) in cases {
        let mut d = loaded();
        let before = d.clone();
        let r = d.add_folder_files(vec![file(path, &bytes)]);
        let name = path.rsplit('/').next().unwrap();
        assert_refused(&before, &d, &r, name);
        assert!(problem_for(&r, name).contains(expected), "{name}: {r:?}");
    }
}

#[test]
fn images_are_recognised_by_content_when_the_name_does_not_say() {
    let mut d = loaded();
    let r = d.add_folder_files(vec![
        file("tool/IMG_0001", &photo(5)),
        file("tool/saved.jfif", &photo(6)),
    ]);
    assert_eq!((r.added, r.errors.len()), (2, 0), "{r:?}");
    assert_eq!(d.classes[2].samples.len(), 5);
    let before = d.clone();
    let r = d.add_folder_files(vec![
        file("tool/IMG_0002", b"\0\0\0\x18ftypheic\0\0\0\0"),
        file("tool/LICENSE", b"MIT"),
        file("tool/empty.dat", b""),
    ]);
    assert_refused(&before, &d, &r, "IMG_0002");
    assert!(
        problem_for(&r, "IMG_0002").contains("the HEIC format is not supported"),
        "{r:?}"
    );
    assert!(problem_for(&r, "LICENSE").contains("not an image file"), "{r:?}");
    assert!(problem_for(&r, "empty.dat").contains("not an image file"), "{r:?}");
}

/// A PNG whose header claims 100000×100000 pixels (30 GB decoded), with a tiny IDAT: refused from the header.
fn png_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    for (kind, data) in [
        (&b"IHDR"[..], &ihdr[..]),
        (b"IDAT", b"\x78\x9c\x03\x00\x00\x00\x00\x01"),
        (b"IEND", b""),
    ] {
        png.extend((data.len() as u32).to_be_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(kind);
        h.update(data);
        png.extend(kind);
        png.extend(data);
        png.extend(h.finalize().to_be_bytes());
    }
    png
}

#[test]
fn huge_declared_dimensions_are_refused_without_decoding() {
    let mut d = loaded();
    let before = d.clone();
    let start = std::time::Instant::now();
    let r = d.add_folder_files(vec![file("animal/bomb.png", &png_bomb())]);
    assert_refused(&before, &d, &r, "bomb.png");
    assert!(problem_for(&r, "bomb.png").contains("too large"), "{r:?}");
    assert!(start.elapsed().as_secs() < 2, "took {:?}", start.elapsed());
}

#[test]
fn files_outside_class_folders_and_empty_folders() {
    let mut d = loaded();
    let before = d.clone();
    // An image beside the class folders: refused by name; the rest of the drop is read (here, duplicates).
    let mut files = sample("root/", 1);
    files.push(file("root/stray.jpg", &jpg()));
    let r = d.add_folder_files(files);
    assert!(
        problem_for(&r, "root/stray.jpg").contains("not in a class folder"),
        "{r:?}"
    );
    assert_eq!(
        r.warnings.len(),
        3,
        "the three photos are already loaded under the same names: {r:?}"
    );
    assert_refused(&before, &d, &r, "stray.jpg");
    // A drop of images without any folder.
    let r = d.add_folder_files(vec![file("loose.jpg", &jpg())]);
    assert_refused(&before, &d, &r, "loose.jpg");
    // An empty folder, an empty drop, a folder of non-images: "no images found", naming the folder.
    let r = d.add_folder_files(vec![file("holiday/", b"")]);
    assert_refused(&before, &d, &r, "holiday");
    assert!(problem_for(&r, "holiday").contains("no images found"), "{r:?}");
    let r = d.add_folder_files(Vec::new());
    assert!(r.errors[0].problem.contains("no images found"), "{r:?}");
    let r = d.add_folder_files(vec![file("docs/a/readme.txt", b"hi"), file("docs/.DS_Store", b"x")]);
    assert_refused(&before, &d, &r, "readme.txt");
    assert!(problem_for(&r, "docs").contains("no images found"), "{r:?}");
    // An empty class folder beside good ones: the good ones load, the empty one is named.
    let mut files = folder(EXTRA, &["fish"], "more/", 2);
    files.push(file("more/birds/", b""));
    let r = d.add_folder_files(files);
    assert_eq!(r.added, 2, "{r:?}");
    assert!(problem_for(&r, "more/birds").contains("no images found"), "{r:?}");
    assert_eq!(d.classes[..3], before.classes[..]);
}

#[test]
fn too_few_classes_or_images_block_training_with_a_reason() {
    let mut d = Dataset::default();
    assert!(d.check_trainable().is_err());
    d.add_folder_files(folder(SAMPLE, &["animal"], "", 2));
    let problems = d.check_trainable().unwrap_err();
    assert!(
        problems[0].contains("“animal”") && problems[0].contains("2 classes"),
        "{problems:?}"
    );
    let r = d.add_to_class("tool", vec![file("hammer.jpg", &jpg())]);
    assert_eq!(r.added, 1, "{r:?}");
    let problems = d.check_trainable().unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("“tool” has 1 image"), "{problems:?}");
    d.add_to_class("tool", vec![file("pliers.jpg", &photo(6))]);
    assert!(d.check_trainable().is_ok());
}

#[test]
fn loose_images_into_a_class() {
    let mut d = loaded();
    let before = d.clone();
    let r = d.add_to_class("tool", vec![file("x/hammer.jpg", &jpg()), file(".DS_Store", b"x")]);
    assert_eq!((r.added, r.errors.len()), (1, 0), "{r:?}");
    assert_eq!(d.classes[2].samples.last().unwrap().name, "hammer.jpg");
    let mut d = before.clone();
    let r = d.add_to_class("tool", vec![file("more.zip", b"PK"), file("bad.png", b"nope")]);
    assert_refused(&before, &d, &r, "more.zip");
    assert_refused(&before, &d, &r, "bad.png");
    let r = d.add_to_class("\u{7}\u{202E}", vec![file("a.jpg", &jpg())]);
    assert_refused(&before, &d, &r, "a.jpg");
}

#[test]
fn odd_names_are_cleaned_and_rename_is_checked() {
    let mut d = loaded();
    let jpg = jpg();
    let long = format!("{}/x.jpg", "y".repeat(100));
    let r = d.add_folder_files(vec![
        file("\u{7}  big\tcats \u{202E} /x.jpg", &jpg),
        file("café ☕/ça va?.jpg", &jpg),
        file(&long, &jpg),
    ]);
    assert_eq!((r.added, r.errors.len()), (3, 0), "{r:?}");
    assert_eq!(d.class_names()[3..], ["big cats", "café ☕", &"y".repeat(64)]);
    let before = d.clone();
    let r = d.add_folder_files(vec![file("\u{1}\u{2}\u{200B}/y.jpg", &jpg)]);
    assert_refused(&before, &d, &r, "y.jpg");
    assert!(problem_for(&r, "y.jpg").contains("folder name"), "{r:?}");
    for bad in ["  ", "animal", "a\u{7}b", &"z".repeat(65)] {
        assert!(d.rename_class(3, bad).is_err(), "{bad:?}");
    }
    assert_eq!(before, d);
    d.rename_class(3, "felines").unwrap();
    assert_eq!(d.class_names()[3], "felines");
    d.remove_class(5);
    d.remove_class(4);
    d.remove_class(3);
    assert_eq!(d, loaded());
}

#[test]
fn duplicates_in_a_class_are_skipped_with_a_warning() {
    let mut d = loaded();
    let before = d.clone();
    let r = d.add_folder_files(sample("again/", 3));
    assert_eq!((r.added, r.errors.len(), r.warnings.len()), (0, 0, 9), "{r:?}");
    assert!(r.warnings[0].file.contains("again/animal/") && r.warnings[0].problem.contains("already"));
    assert_eq!(before, d);
    // The same name in two sub-folders of a class is two images.
    let r = d.add_folder_files(vec![
        file("set/tool/a/1.jpg", &photo(5)),
        file("set/tool/b/1.jpg", &photo(6)),
        file("set/animal/1.jpg", &photo(7)),
    ]);
    assert_eq!(
        (r.added, r.errors.len(), r.warnings.len()),
        (3, 0, 1),
        "one nested-folder warning: {r:?}"
    );
    let names: Vec<&str> = d.classes[2].samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names[3..], ["a/1.jpg", "b/1.jpg"]);
}

#[test]
fn unsafe_zip_entries_are_refused_by_name() {
    let jpg = jpg();
    let mut d = loaded();
    let before = d.clone();
    let evil = zip(&[
        ("../evil.jpg", &jpg),
        ("a/b/../../../x.jpg", &jpg),
        ("/abs/olute.jpg", &jpg),
        ("cats/inner.zip", &zip(&[("a/b.jpg", &jpg)])),
    ]);
    let r = d.add_zip("evil.zip", &evil);
    for name in ["evil.jpg", "x.jpg", "olute.jpg"] {
        assert_refused(&before, &d, &r, name);
        assert!(problem_for(&r, name).contains(".."), "{r:?}");
        assert!(problem_for(&r, name).contains("'..'"));
    }
    assert!(problem_for(&r, "inner.zip").contains("zip inside a zip"), "{r:?}");
    assert!(
        r.errors
            .iter()
            .all(|e| e.file.starts_with("evil.zip: ") || e.file == "evil.zip")
    );
    // Good entries beside a bad one still load.
    let r = d.add_zip("mixed.zip", &zip(&[("../evil.jpg", &jpg), ("birds/robin.jpg", &jpg)]));
    assert_eq!((r.added, r.errors.len()), (1, 1), "{r:?}");
}

#[test]
fn oversized_and_broken_zips_are_refused() {
    let jpg = jpg();
    let mut d = loaded();
    let before = d.clone();
    let small = zip(&[("a/one.jpg", &jpg), ("b/two.jpg", &jpg)]);
    // Entries declaring 4 GB unpacked: refused from the table of contents, nothing inflated.
    let r = d.add_zip("bomb.zip", &declare_size(small.clone(), 0xF000_0000));
    assert_refused(&before, &d, &r, "bomb.zip");
    assert!(problem_for(&r, "bomb.zip").contains("over the 1024 MB limit"), "{r:?}");
    // One entry declaring 100 MB: over the per-file limit.
    let one = zip(&[("a/big.jpg", &jpg)]);
    let r = d.add_zip("big.zip", &declare_size(one, 100 << 20));
    assert_refused(&before, &d, &r, "big.jpg");
    assert!(problem_for(&r, "big.jpg").contains("too large"), "{r:?}");
    // An entry declaring less than it holds: caught while inflating (by the zip reader, or our own cap).
    let r = d.add_zip("liar.zip", &declare_size(small, 1000));
    assert_refused(&before, &d, &r, "one.jpg");
    assert!(problem_for(&r, "one.jpg").contains("declare"), "{r:?}");
    // Too many entries.
    let many: Vec<(String, &[u8])> = (0..20_001).map(|i| (format!("c/{i}.txt"), &b""[..])).collect();
    let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let r = d.add_zip("many.zip", &zip(&refs));
    assert_refused(&before, &d, &r, "many.zip");
    assert!(problem_for(&r, "many.zip").contains("too many entries"), "{r:?}");
    // Not a zip, a cut-off zip, a zip with no images: one error naming the zip.
    let good = zip(&[("a/x.jpg", &jpg)]);
    for (name, bytes) in [
        ("broken.zip", b"PK\x03\x04 not really".to_vec()),
        ("cut.zip", good[..good.len() / 2].to_vec()),
        ("empty.zip", zip(&[("nothing/", b"")])),
        ("texts.zip", zip(&[("a/readme.txt", b"hi")])),
    ] {
        let r = d.add_zip(name, &bytes);
        assert_refused(&before, &d, &r, name);
        assert!(r.errors.iter().any(|e| e.file == name), "{name}: {r:?}");
    }
    let r = d.add_zip("empty.zip", &zip(&[("nothing/", b"")]));
    assert!(problem_for(&r, "empty.zip").contains("no images found"), "{r:?}");
}

#[test]
fn stratified_split_of_a_dataset() {
    let mut d = Dataset::default();
    d.add_folder_files(sample("", 10));
    d.add_folder_files(folder(EXTRA, &["fish"], "", 4));
    let labels = d.labels();
    let s = stratified_split(&labels, 0.2, 0);
    for (class, (val, train)) in [(2, 8), (2, 8), (2, 8), (1, 3)].into_iter().enumerate() {
        assert_eq!(
            s.val.iter().filter(|&&i| labels[i] == class).count(),
            val,
            "class {class}"
        );
        assert_eq!(
            s.train.iter().filter(|&&i| labels[i] == class).count(),
            train,
            "class {class}"
        );
    }
    let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..labels.len()).collect::<Vec<_>>(), "disjoint and covering");
    assert!(s.train.is_sorted() && s.val.is_sorted());
    assert_eq!(s, stratified_split(&labels, 0.2, 0), "deterministic for a seed");
    assert_ne!(s, stratified_split(&labels, 0.2, 1), "another seed, another split");
}
