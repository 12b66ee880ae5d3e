//! `ajuste export-recipe` (issue 27, part 3) on a tiny project: the recipe's files as `scripts/recipe/` holds
//! them, the shipped weights, the project's options, its classes' order and its images as the very pixels the
//! page trains on; a folder that is not empty and a file that is not a project are refused.
//!
//! Then the recipe's data side in Python (python3 with Pillow and numpy, as `tests/snippet.rs` needs; CI has
//! them): it lists the classes and images in the project's order, reads back the same pixels, draws the same
//! stratified split as `src/data/split.rs` and the same augmented view as `src/train/augment.rs`.
//!
//! Last, only where PyTorch, timm and PEFT are installed (not in CI; set `AJUSTE_TORCH_PYTHON` to a python that
//! has them, else `python3` is tried): `train.py` trains one epoch of LoRA on the CPU, and `ajuste predict`
//! opens the model.safetensors it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ajuste::data::split::stratified_split;
use ajuste::data::{ClassData, Dataset, Sample};
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::project::{self, Project};
use ajuste::rng::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_ajuste");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("the command runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A 224×224 image of stripes: `class` sets the colour, `i` the period.
fn pixels(class: usize, i: usize) -> Vec<u8> {
    let period = 8 + 3 * i;
    (0..224 * 224)
        .flat_map(|p| {
            let on = (p / 224 + class * (p % 224)) % period < period / 2;
            let ink = [40 + 60 * class as u8, 90, 200 - 50 * class as u8];
            if on { ink } else { [235, 230, 220] }
        })
        .collect()
}

/// Two classes, one named with a slash (no folder can be called that), five and four images, some nested.
fn project(dir: &Path) -> (PathBuf, Project) {
    let names = [
        ["a.jpg", "sub/b.png", "c.jpeg", "d.png", "e.png"].as_slice(),
        &["x.png", "y.png", "w/z.jpg", "v.png"],
    ];
    let classes = ["red", "sky/blue"]
        .iter()
        .zip(names)
        .enumerate()
        .map(|(c, (name, files))| {
            let samples = files
                .iter()
                .enumerate()
                .map(|(i, f)| Sample::new(*f, pixels(c, i)))
                .collect();
            ClassData::new(*name, samples)
        })
        .collect();
    let options = TrainOptions {
        epochs: 1,
        seed: 11,
        val_fraction: 0.25,
        finetune: FinetuneChoice::named("lora", 2, 4).unwrap(),
        ..TrainOptions::default()
    };
    let project = Project {
        dataset: Dataset { classes },
        options,
        model: None,
    };
    let path = dir.join("tiny.ajuste");
    std::fs::write(
        &path,
        project::write(&project, &Default::default(), &Default::default()).unwrap(),
    )
    .unwrap();
    (path, project)
}

/// The first of `candidates` that imports `modules`.
fn python_with(candidates: &[String], modules: &str) -> Option<String> {
    candidates.iter().find_map(|p| {
        let ok = Command::new(p).args(["-c", &format!("import {modules}")]).output();
        ok.is_ok_and(|o| o.status.success()).then(|| p.clone())
    })
}

#[test]
fn exports_the_recipe_with_the_projects_images_options_and_split() {
    let dir = std::env::temp_dir().join(format!("ajuste-recipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (path, project) = project(&dir);
    let out = dir.join("recipe");
    let exported = run(&["export-recipe", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    assert!(
        text(&exported.stderr).contains("9 images in 2 classes (mode lora)"),
        "{}",
        text(&exported.stderr)
    );

    for file in [
        "train.py",
        "ajuste_data.py",
        "ajuste_model.py",
        "requirements.txt",
        "README.md",
    ] {
        let ours = std::fs::read(format!("{ROOT}/scripts/recipe/{file}")).unwrap();
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            ours,
            "{file} differs from scripts/recipe's"
        );
    }
    let weights = std::fs::read(format!("{ROOT}/public/models/efficientnet_lite0.safetensors")).unwrap();
    assert!(std::fs::read(out.join("efficientnet_lite0.safetensors")).unwrap() == weights);
    let options: TrainOptions =
        serde_json::from_slice(&std::fs::read(out.join("options.json")).unwrap()).expect("options.json reads back");
    assert_eq!(options, project.options);
    let classes: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("classes.json")).unwrap()).unwrap();
    assert_eq!(
        classes,
        serde_json::json!([{"name": "red", "folder": "red"}, {"name": "sky/blue", "folder": "sky_blue"}])
    );
    let mut listed: Vec<String> = std::fs::read_dir(out.join("data/red"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        ["0000-a.png", "0001-sub_b.png", "0002-c.png", "0003-d.png", "0004-e.png"]
    );

    // Refused: a folder that is not empty, a file that is not a project.
    let again = run(&["export-recipe", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(
        !again.status.success() && text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    let folder = run(&[
        "export-recipe",
        out.join("data").to_str().unwrap(),
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert!(
        text(&folder.stderr).contains("not a .ajuste project"),
        "{}",
        text(&folder.stderr)
    );

    // The recipe's data side, in Python: the classes, images and pixels in the project's order, the split and
    // an augmented view.
    let candidates = ["python3".to_string(), "/usr/bin/python3".to_string()];
    let python = python_with(&candidates, "PIL, numpy")
        .expect("this test needs python3 with Pillow and numpy: run scripts/setup.sh (apt: python3-pil python3-numpy)");
    let compiled = Command::new(&python)
        .args(["-m", "py_compile", "train.py", "ajuste_data.py", "ajuste_model.py"])
        .current_dir(&out)
        .env("PYTHONPYCACHEPREFIX", dir.join("pycache"))
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{}", text(&compiled.stderr));
    let script = r#"
import json, sys
import numpy as np
import ajuste_data as D
folder = D.Folder("data")
opts = json.load(open("options.json"))
train, val = D.stratified_split(folder.labels, opts["val_fraction"], opts["seed"])
np.stack([D.load_image(p) for p in folder.paths]).tofile(sys.argv[1])
view = D.augment(D.load_image(folder.paths[1]), opts["augment"], D.view_rng(opts["seed"], 1, 3))
view.tofile(sys.argv[2])
print(json.dumps({"names": folder.names, "labels": folder.labels, "train": train, "val": val}))
"#;
    let (all, view) = (dir.join("pixels.bin"), dir.join("view.bin"));
    let checked = Command::new(&python)
        .args(["-c", script, all.to_str().unwrap(), view.to_str().unwrap()])
        .current_dir(&out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    let dataset = &project.dataset;
    assert_eq!(seen["names"], serde_json::json!(dataset.class_names()));
    assert_eq!(seen["labels"], serde_json::json!(dataset.labels()));
    let split = stratified_split(&dataset.labels(), project.options.val_fraction, project.options.seed);
    assert_eq!(
        (seen["train"].clone(), seen["val"].clone()),
        (serde_json::json!(split.train), serde_json::json!(split.val))
    );
    let samples: Vec<&Sample> = dataset.classes.iter().flat_map(|c| &c.samples).collect();
    let read = std::fs::read(&all).unwrap();
    for (sample, got) in samples.iter().zip(read.chunks_exact(224 * 224 * 3)) {
        assert!(
            got == sample.pixels,
            "{}: the recipe reads other pixels than the page's",
            sample.name
        );
    }
    // The view the trainer's bank draws for image 1, view 3 (`finetune/trainer/bank.rs`).
    let mut mix = Rng::new(project.options.seed ^ 1u64.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut rng = Rng::new(mix.next_u64() ^ 3u64.wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    let page = ajuste::train::augment(&samples[1].pixels, &project.options.deep.augment, &mut rng);
    let recipe = std::fs::read(&view).unwrap();
    let apart: Vec<i32> = page
        .iter()
        .zip(&recipe)
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .filter(|d| *d > 0)
        .collect();
    assert_ne!(page, samples[1].pixels, "the view is augmented");
    assert!(
        apart.len() < 100 && apart.iter().all(|d| *d <= 2),
        "the recipe's augmentation is not the page's: {} values apart, by up to {:?}",
        apart.len(),
        apart.iter().max()
    );

    let torch = std::env::var("AJUSTE_TORCH_PYTHON")
        .map(|p| vec![p])
        .unwrap_or(candidates.to_vec());
    let Some(torch) = python_with(&torch, "torch, timm, peft, safetensors") else {
        eprintln!("no python with torch, timm and peft: train.py not run (set AJUSTE_TORCH_PYTHON)");
        return;
    };
    let trained = Command::new(&torch)
        .args(["train.py", "--device", "cpu", "--workers", "0", "--budget", "0"])
        .current_dir(&out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let log = text(&trained.stdout) + &text(&trained.stderr);
    assert!(trained.status.success(), "{log}");
    assert!(
        log.contains("lora epoch 1/1: train loss") && log.contains("Kept lora"),
        "{log}"
    );
    let model = out.join("out/model.safetensors");
    let image = out.join("data/sky_blue/0000-x.png");
    let predicted = run(&["predict", model.to_str().unwrap(), image.to_str().unwrap(), "--json"]);
    assert!(predicted.status.success(), "{}", text(&predicted.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&predicted.stdout).expect("JSON");
    let labels: Vec<&str> = answer[0]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 2, "{answer}");
    assert!(labels.contains(&"red") && labels.contains(&"sky/blue"), "{answer}");
    assert_eq!(
        std::fs::read_to_string(out.join("out/labels.txt")).unwrap(),
        "0 red\n1 sky/blue\n"
    );
    for file in ["metrics.json", "adapter_model.safetensors", "adapter_config.json"] {
        assert!(out.join("out").join(file).exists(), "{file} missing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
