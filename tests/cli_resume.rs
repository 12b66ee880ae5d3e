//! The native command (issue 27), beyond one training: Ctrl-C stops a LoRA run and keeps its best epoch, and
//! `--resume` finishes it from the checkpoint it left; the charts as SVG; `ajuste eval` with its confusion matrix
//! and mistakes, and a class the model does not know refused by name.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ajuste::project;
use common::cli::{BIN, folder, run, scratch, text, train_head};
use serde_json::Value;

fn kept_history(out: &Path) -> usize {
    let opened = project::read(&std::fs::read(out.join("project.ajuste")).unwrap()).unwrap();
    opened.model.expect("a trained model").trained.report.history.len()
}

#[test]
fn ctrl_c_keeps_the_best_epoch_and_resume_finishes_the_run() {
    let dir = scratch("resume");
    let data = folder(&dir);
    let out = dir.join("model");
    let options = dir.join("options.json");
    // No early stop: the run would go on for all 40 epochs, so only the stop can end it sooner.
    std::fs::write(&options, r#"{"epochs": 40, "patience": 0, "batch_size": 4}"#).unwrap();
    let args = [
        "train",
        data.to_str().unwrap(),
        "--mode",
        "lora",
        "--options",
        options.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    let child = Command::new(BIN)
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let checkpoint = out.join("checkpoint.bin");
    let start = Instant::now();
    while !checkpoint.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // What a terminal's Ctrl-C sends.
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stopped = child.wait_with_output().unwrap();
    let stderr = text(&stopped.stderr);
    assert!(stopped.status.success(), "{stderr}");
    assert!(stderr.contains("Stopping after this step"), "{stderr}");
    assert!(stderr.contains("--resume"), "says how to go on:\n{stderr}");
    let done = kept_history(&out);
    assert!(done < 40, "stopped early, after {done} epochs");
    assert!(out.join("model.safetensors").is_file() && checkpoint.is_file());

    let resumed = run(&[
        "train",
        data.to_str().unwrap(),
        "--resume",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("Resuming 8 images in 2 classes"), "{stderr}");
    assert_eq!(kept_history(&out), 40, "the resumed run went on to its last epoch");
    assert!(!checkpoint.exists(), "a finished run leaves nothing to resume");
    let config: Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["training_options"]["finetune"]["kind"], "lora");
    assert_eq!(config["metrics"]["epochs_run"], 40);

    // The charts of the run, one point per epoch.
    let loss = std::fs::read_to_string(out.join("charts/lora-loss.svg")).unwrap();
    let line = loss.split("<polyline").nth(1).expect("a line per series");
    let points = line.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
    assert_eq!(points.split(' ').count(), 40);
    assert!(loss.contains("LoRA (kept): loss"));
    assert!(out.join("charts/lora-accuracy.svg").is_file());

    // Nothing to resume any more: said plainly.
    let again = run(&[
        "train",
        data.to_str().unwrap(),
        "--resume",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("nothing to resume"),
        "{}",
        text(&again.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_reports_the_confusion_matrix_and_the_mistakes() {
    let dir = scratch("eval");
    let data = folder(&dir);
    let out = dir.join("model");
    let trained = train_head(&data, 3, &out);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let model = out.join("model.safetensors");
    let evaluated = run(&["eval", model.to_str().unwrap(), data.to_str().unwrap(), "--json"]);
    assert!(evaluated.status.success(), "{}", text(&evaluated.stderr));
    let report: Value = serde_json::from_slice(&evaluated.stdout).unwrap();
    assert_eq!(report["images"], 8, "the damaged file is skipped: {report}");
    assert_eq!(report["labels"], serde_json::json!(["blue", "red"]));
    let confusion: Vec<Vec<u64>> = serde_json::from_value(report["confusion"].clone()).unwrap();
    assert_eq!(
        confusion.iter().map(|row| row.iter().sum::<u64>()).collect::<Vec<_>>(),
        [4, 4]
    );
    let right = confusion[0][0] + confusion[1][1];
    let mistakes = report["mistakes"].as_array().unwrap();
    assert_eq!(mistakes.len() as u64, 8 - right);
    assert!((report["accuracy"].as_f64().unwrap() - right as f64 / 8.0).abs() < 1e-6);
    for (c, class) in report["classes"].as_array().unwrap().iter().enumerate() {
        let recall = confusion[c][c] as f64 / 4.0;
        assert!((class["recall"].as_f64().unwrap() - recall).abs() < 1e-6, "{class}");
    }
    // The plain text says the same.
    let shown = run(&["eval", model.to_str().unwrap(), data.to_str().unwrap()]);
    let shown = text(&shown.stdout);
    assert!(shown.contains(&format!("({right} of 8 images)")), "{shown}");
    assert!(shown.contains("Confusion matrix"), "{shown}");

    // A class the model never saw is named, not silently counted as a mistake.
    std::fs::rename(data.join("blue"), data.join("green")).unwrap();
    let refused = run(&["eval", model.to_str().unwrap(), data.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("does not know the class(es) green"),
        "{}",
        text(&refused.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
