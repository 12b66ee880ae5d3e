//! `ajuste train --devices` (issue 27, part 2): every batch shared between devices, each with its own copy of the
//! network. On the CPU each device is a thread and a batch is always cut into the page's 16 parts, so one thread
//! and two give the same model, bit for bit: in a LoRA run (shares of the deeper batches) and in a head-only run
//! (shares of the embedding batches). Bad `--devices` values are refused with a message saying what is meant.
//! The features computed are kept in the output folder: a second run computes none and trains the same model, and
//! a record cut short by a kill is dropped. A deeper run's cut activations kept in a memory-mapped file train
//! the same model as in memory, and the file is gone when the run ends.

mod common;

use std::path::Path;

use common::cli::{folder, run, scratch, text};

/// `ajuste train` on the CPU for 2 epochs with `flags` (`--devices …`, `--disk-cache …`); its stderr.
fn train(data: &Path, mode: &str, flags: &[&str], out: &Path) -> String {
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "--mode",
        mode,
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(flags);
    let output = run(&args);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{flags:?} failed: {stderr}");
    stderr
}

fn same_files(a: &Path, b: &Path) {
    for name in ["model.safetensors", "labels.txt"] {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
    }
    // The losses and accuracies per epoch too (config.json's timings differ).
    let metrics = |dir: &Path| {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["metrics"].clone()
    };
    assert_eq!(metrics(a), metrics(b));
}

#[test]
fn two_cpu_threads_train_the_same_model_as_one() {
    let dir = scratch("devices");
    let data = folder(&dir);
    for mode in ["lora", "head"] {
        let (one, two) = (dir.join(format!("{mode}-1")), dir.join(format!("{mode}-2")));
        let said = train(&data, mode, &["--devices", "0"], &one);
        assert!(said.contains("on the CPU (1 thread of"), "{said}");
        let said = train(&data, mode, &["--devices", "0,1"], &two);
        assert!(said.contains("on the CPU (2 threads of"), "{said}");
        same_files(&one, &two);
    }
}

#[test]
fn bad_devices_are_refused_plainly() {
    let dir = scratch("devices-bad");
    let data = folder(&dir);
    let refused = |devices: &str| {
        let output = run(&["train", data.to_str().unwrap(), "--device", "cpu", "--devices", devices]);
        assert!(!output.status.success(), "--devices {devices} was taken");
        text(&output.stderr)
    };
    assert!(refused("first").contains("neither `all` nor device numbers"));
    let seventeen: Vec<String> = (0..17).map(|n| n.to_string()).collect();
    assert!(refused(&seventeen.join(",")).contains("at most 16 CPU threads"));
    assert!(
        !dir.join("ajuste-model").exists(),
        "nothing is written for a refused command"
    );
}

#[test]
fn features_kept_on_disk_are_not_computed_again() {
    let dir = scratch("features");
    let data = folder(&dir);
    let out = dir.join("model");
    let first = train(&data, "head", &["--devices", "0,1"], &out);
    assert!(first.contains("Features (frozen backbone): 8 images"), "{first}");
    let model = std::fs::read(out.join("model.safetensors")).unwrap();
    let features = out.join("features.bin");
    let size = std::fs::metadata(&features).unwrap().len();
    assert_eq!(size, 12 + 8 * (8 + 4 * 1280), "a header and 8 records");

    let again = train(&data, "head", &["--devices", "0,1"], &out);
    assert!(again.contains("Features of 8 images from an earlier run"), "{again}");
    assert!(!again.contains("Features (frozen backbone)"), "computed again: {again}");
    assert!(std::fs::read(out.join("model.safetensors")).unwrap() == model);
    assert_eq!(std::fs::metadata(&features).unwrap().len(), size, "nothing appended");

    // Killed mid-write: the last record cut short. It is dropped and its image computed again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&features)
        .unwrap()
        .set_len(size - 100)
        .unwrap();
    let torn = train(&data, "head", &["--devices", "0,1"], &out);
    assert!(torn.contains("Features of 7 images from an earlier run"), "{torn}");
    assert!(torn.contains("Features (frozen backbone): 1 images"), "{torn}");
    assert_eq!(std::fs::metadata(&features).unwrap().len(), size);
    assert!(std::fs::read(out.join("model.safetensors")).unwrap() == model);

    std::fs::write(&features, b"something else").unwrap();
    let output = run(&[
        "train",
        data.to_str().unwrap(),
        "--mode",
        "head",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("features.bin: not a features file"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn activations_mapped_from_disk_train_the_same_model_as_in_memory() {
    let dir = scratch("activations");
    let data = folder(&dir);
    let lora = |disk_cache: &str, out: &Path| train(&data, "lora", &["--disk-cache", disk_cache], out);
    let (mapped, memory) = (dir.join("mapped"), dir.join("memory"));
    let said = lora("2", &mapped);
    let file = mapped.join("activations.bin");
    assert!(said.contains(&format!("memory-mapped in {}", file.display())), "{said}");
    assert!(said.contains("Preparing the deeper run:"), "nothing was cached: {said}");
    assert!(!file.exists(), "the activations file outlives its run");
    let said = lora("0", &memory);
    assert!(said.contains("kept in memory"), "{said}");
    same_files(&mapped, &memory);
}
