//! `ajuste train` on a folder keeps its images on disk (issue 27, data that does not fit in memory): the same
//! model as from the same images held in memory (a `.zip` of the folder), the page's messages for bad files and
//! duplicates, a deeper run reading its pixels back from disk, and a project that opens with the images.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ajuste::data::{Dataset, InputFile};
use ajuste::project;
use image::{ImageFormat, RgbImage};

const BIN: &str = env!("CARGO_BIN_EXE_ajuste");

fn train(data: &Path, out: &Path, mode: &str) -> String {
    let done: Output = Command::new(BIN)
        .args(["train", data.to_str().unwrap(), "--mode", mode, "--epochs", "2"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .expect("the command runs");
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "{stderr}");
    stderr
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ajuste-cli-disk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `root/shapes/{red,blue}/…`: three images a class, a copy of one in its own class (left out) and in the other
/// (kept, with the page's warning), a damaged file, a note that is not an image, and an empty folder. Returns
/// the folder and its files as the page gets them.
fn folder(root: &Path) -> (PathBuf, Vec<InputFile>) {
    let data = root.join("shapes");
    let mut files = Vec::new();
    let mut put = |path: &str, bytes: Vec<u8>| {
        let on_disk = data.join(path);
        std::fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        std::fs::write(&on_disk, &bytes).unwrap();
        files.push(InputFile {
            path: format!("shapes/{path}"),
            bytes,
        });
    };
    for (class, rgb) in [("red", [200u8, 30, 30]), ("blue", [30u8, 40, 210])] {
        for i in 0..3u32 {
            let img = RgbImage::from_fn(40 + i, 32, |x, y| {
                image::Rgb(rgb.map(|c| c.saturating_add(((x * (i + 1) + y * 3) % 40) as u8)))
            });
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
                .unwrap();
            if class == "red" && i == 0 {
                put("red/copy.png", png.clone());
                put("blue/odd.png", png.clone());
            }
            put(&format!("{class}/{i}.png"), png);
        }
    }
    put("red/broken.png", b"\x89PNG not really".to_vec());
    put("blue/notes.txt", b"taken on Tuesday".to_vec());
    std::fs::create_dir_all(data.join("green")).unwrap();
    (data, files)
}

/// The folder as a `.zip`: one file read whole, its images held in memory.
fn zipped(files: &[InputFile], path: &Path) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for file in files {
        zip.start_file(&file.path, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&file.bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn images_on_disk_train_as_in_memory_with_the_pages_messages() {
    let dir = scratch("head");
    let (data, files) = folder(&dir);
    let stderr = train(&data, &dir.join("disk"), "head");

    // Every message the page gives for these files, word for word; the empty folder as the page's drop says it.
    let page = Dataset::default().add_folder_files(files.clone());
    assert_eq!((page.added, page.skipped), (7, 1), "{page:?}");
    for error in &page.errors {
        assert!(
            stderr.contains(&format!("skipped {error}")),
            "{error} not in:\n{stderr}"
        );
    }
    for warning in &page.warnings {
        assert!(
            stderr.contains(&format!("note: {warning}")),
            "{warning} not in:\n{stderr}"
        );
    }
    assert!(stderr.contains("skipped shapes/green: the folder is empty"), "{stderr}");
    assert!(
        stderr.contains("1 images already in their class were left out"),
        "{stderr}"
    );
    assert!(stderr.contains("7 images in 2 classes"), "{stderr}");

    // The same images held in memory train the same model.
    let zip = dir.join("shapes.zip");
    zipped(&files, &zip);
    train(&zip, &dir.join("memory"), "head");
    for file in ["labels.txt", "config.json", "model.safetensors"] {
        let (disk, memory) = (dir.join("disk").join(file), dir.join("memory").join(file));
        assert!(
            std::fs::read(&disk).unwrap() == std::fs::read(&memory).unwrap(),
            "{file} differs"
        );
    }

    // The project carries the files as given: the page opens it to the very images the model was trained on.
    let opened = project::read(&std::fs::read(dir.join("disk/project.ajuste")).unwrap()).unwrap();
    let model = opened.model.expect("the model is in the project");
    assert_eq!(opened.dataset.num_images(), 7);
    assert_eq!(
        opened.dataset.fingerprint(),
        model.fingerprint,
        "the model matches its images"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_deeper_run_reads_its_images_back_from_disk() {
    let dir = scratch("deep");
    let (data, files) = folder(&dir);
    train(&data, &dir.join("disk"), "last-blocks");
    let zip = dir.join("shapes.zip");
    zipped(&files, &zip);
    train(&zip, &dir.join("memory"), "last-blocks");
    let report = |side: &str| {
        let bytes = std::fs::read(dir.join(side).join("project.ajuste")).unwrap();
        let trained = project::read(&bytes).unwrap().model.unwrap().trained;
        (
            trained.report.history.len(),
            trained.report.predictions.len(),
            trained.report.labels,
        )
    };
    assert_eq!(report("disk"), report("memory"));
    let _ = std::fs::remove_dir_all(&dir);
}
