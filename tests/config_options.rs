//! config.json's options for Auto, which makes both kinds of run, and the head an Auto model exports (issue 28
//! item 5), from export metadata written out by hand.

mod common;

use ajuste::export::{ExportMetadata, config_json};
use ajuste::options::{FinetuneChoice, HeadOptions, TrainOptions};
use ajuste::train::RunMode;
use common::config::{DEEP_ONLY, HEAD_ONLY, checked_config, has};
use serde_json::json;

/// Auto makes both kinds of run: its options keep both parts, the backbone learning rate its LoRA used, and
/// still no dropout on a linear head.
#[test]
fn auto_records_both_parts_of_its_options() {
    let options = TrainOptions::default();
    assert_eq!(options.finetune, FinetuneChoice::Auto);
    let meta = ExportMetadata {
        labels: vec!["a".into(), "b".into()],
        options: options.clone(),
        best_epoch: 1,
        epochs_run: 3,
        val_accuracy: 0.7,
        val_loss: 0.3,
        train_accuracy: 0.9,
        train_loss: 0.1,
        per_class_val_accuracy: vec![0.6, 0.8],
        stop_reason: "completed 3 epochs".into(),
        num_train: 8,
        num_val: 2,
        kept: RunMode::Head,
    };
    let text = config_json(&meta);
    for needle in [
        "\"val_accuracy\": 0.7,",
        "\"a\": 0.6",
        "\"weight_decay\": 0.0001\n",
        "\"best_epoch\": 2,",
    ] {
        has(&text, needle);
    }
    let config = checked_config(&text);
    let o = &config["training_options"];
    for key in HEAD_ONLY.into_iter().filter(|k| *k != "dropout").chain(DEEP_ONLY) {
        assert!(
            o.get(key).is_some(),
            "Auto ran both kinds of run: {key} missing from {o}"
        );
    }
    assert!(o.get("dropout").is_none(), "a linear head has no dropout: {o}");
    assert_eq!(o["backbone_learning_rate"], json!(0.001));
    let back: TrainOptions = serde_json::from_value(o.clone()).unwrap();
    assert_eq!(
        back.deep.backbone_lr,
        Some(options.backbone_lr(options.deep_mode().unwrap()))
    );
}

/// Auto whose head-only run had a hidden layer, but which kept its LoRA run: the exported head is linear, and the
/// architecture says so, while the options still record the hidden layer its head-only run trained.
#[test]
fn auto_that_kept_lora_exports_a_linear_head() {
    let options = TrainOptions {
        head: HeadOptions {
            hidden_units: 64,
            ..Default::default()
        },
        ..Default::default()
    };
    let meta = |kept| ExportMetadata {
        labels: vec!["a".into(), "b".into()],
        options: options.clone(),
        best_epoch: 0,
        epochs_run: 1,
        val_accuracy: 0.5,
        val_loss: 0.7,
        train_accuracy: 0.5,
        train_loss: 0.7,
        per_class_val_accuracy: vec![0.5, 0.5],
        stop_reason: "completed 1 epochs".into(),
        num_train: 4,
        num_val: 2,
        kept,
    };
    let lora = checked_config(&config_json(&meta(RunMode::Lora)));
    assert_eq!(lora["architecture"], json!("efficientnet_lite0 + linear head"));
    assert_eq!(lora["training_options"]["hidden_units"], json!(64));
    let head = checked_config(&config_json(&meta(RunMode::Head)));
    assert_eq!(
        head["architecture"],
        json!("efficientnet_lite0 + mlp head (hidden 64, relu, dropout 0.2)")
    );
}
