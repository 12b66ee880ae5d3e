//! The native command (issue 27): `ajuste train` on a tiny folder with a damaged file (skipped with the page's
//! message), the page's download files and a `.ajuste` it opens; training again from that project; `ajuste
//! predict` with the trained model; options refused with the page's words.

mod common;

use ajuste::data::{Dataset, InputFile};
use ajuste::project;
use common::cli::{folder, run, scratch, text, train_head};
use serde_json::Value;

#[test]
fn trains_exports_opens_its_project_again_and_predicts() {
    let dir = scratch("train");
    let data = folder(&dir);
    let out = dir.join("model");
    let trained = train_head(&data, 3, &out);
    let stderr = text(&trained.stderr);
    assert!(trained.status.success(), "{stderr}");
    // The damaged file is skipped with the very message the page gives.
    let page = Dataset::default().add_folder_files(vec![InputFile {
        path: "shapes/red/broken.png".into(),
        bytes: b"\x89PNG not really".to_vec(),
    }]);
    let message = page.errors[0].to_string();
    assert!(
        stderr.contains(&format!("skipped {message}")),
        "{message} not in:\n{stderr}"
    );
    assert!(stderr.contains("Training 8 images in 2 classes"), "{stderr}");
    assert!(
        stderr.contains("Head only epoch 3: training loss"),
        "a line per epoch:\n{stderr}"
    );

    for file in [
        "model.safetensors",
        "model.onnx",
        "config.json",
        "labels.txt",
        "README.md",
        "project.ajuste",
    ] {
        assert!(out.join(file).is_file(), "{file} missing in {}", out.display());
    }
    assert_eq!(
        std::fs::read_to_string(out.join("labels.txt")).unwrap(),
        "0 blue\n1 red\n"
    );
    let config: Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["labels"], serde_json::json!(["blue", "red"]));
    assert_eq!(config["training_options"]["epochs"], 3);
    assert_eq!(config["training_options"]["finetune"]["kind"], "head");

    // The project opens as the page opens it: the images, the options and the trained model with its report.
    let opened = project::read(&std::fs::read(out.join("project.ajuste")).unwrap()).unwrap();
    assert_eq!(opened.dataset.num_images(), 8);
    assert_eq!(opened.options.epochs, 3);
    let model = opened.model.expect("the trained model is in the project");
    assert_eq!(model.trained.report.labels, ["blue", "red"]);
    assert_eq!(model.trained.report.history.len(), 3);

    // Training again from the project keeps its options but for the ones given.
    let again = dir.join("again");
    let retrained = run(&[
        "train",
        out.join("project.ajuste").to_str().unwrap(),
        "--epochs",
        "2",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(retrained.status.success(), "{}", text(&retrained.stderr));
    let config: Value = serde_json::from_slice(&std::fs::read(again.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["training_options"]["epochs"], 2);
    assert_eq!(
        config["training_options"]["finetune"]["kind"], "head",
        "the project's mode"
    );

    // Prediction by the trained model: each class's image comes out as its class.
    for class in ["red", "blue"] {
        let predicted = run(&[
            "predict",
            out.join("model.safetensors").to_str().unwrap(),
            data.join(class).join("0.png").to_str().unwrap(),
            "--json",
        ]);
        assert!(predicted.status.success(), "{}", text(&predicted.stderr));
        let answer: Value = serde_json::from_slice(&predicted.stdout).unwrap();
        assert_eq!(answer[0]["classes"][0]["label"], class, "{answer}");
        assert_eq!(answer[0]["classes"].as_array().unwrap().len(), 2);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_bad_options_and_missing_data_with_the_reason() {
    let dir = scratch("refuse");
    let data = folder(&dir);
    let options = dir.join("options.json");
    std::fs::write(&options, r#"{"learning_rate": 5}"#).unwrap();
    let refused = run(&["train", data.to_str().unwrap(), "--options", options.to_str().unwrap()]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("learning rate must be above 0 and at most 1 (got 5)"),
        "{stderr}"
    );
    let missing = run(&["train", dir.join("nowhere.zip").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("nowhere.zip: cannot be read"),
        "{}",
        text(&missing.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
