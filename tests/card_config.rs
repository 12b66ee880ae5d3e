//! The model card (the bundle's README.md) and config.json say what trained (issue 28, items 3-5): the
//! optimiser, learning rates and options of the runs made and no others, epochs counted from 1 everywhere, the
//! images held out as counted (with the page's caution), and the values as the user chose them, without the
//! digits an f32 widened to f64 adds. Checked against the report of small real jobs.

mod common;

use ajuste::export::{ExportMetadata, bundle_files, config_json, config_json_of, model_card, open_model};
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::{DeepOptions, FinetuneChoice, FinetuneMode, HeadOptions, TrainOptions};
use ajuste::train::honest::accuracy_summary;
use ajuste::train::job::{Job, run_job};
use ajuste::train::{EmbeddingCache, RunMode, TrainEvent, Trained, TrainingReport};
use burn::tensor::Device;
use common::job_host::{TestHost, dataset};
use serde_json::{Value, json};

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);
const HEAD_ONLY: [&str; 4] = ["weight_decay", "decoupled_weight_decay", "hidden_units", "dropout"];
const DEEP_ONLY: [&str; 6] = [
    "backbone_learning_rate",
    "deep_weight_decay",
    "warmup_fraction",
    "augment",
    "cache_bytes",
    "budget_seconds",
];

fn model() -> EfficientNetLite0 {
    load_efficientnet(&std::fs::read(SHIPPED).unwrap(), &Device::flex()).unwrap()
}

/// The kept model of a job on the two-class, six-image set (three images a class).
fn train(model: &EfficientNetLite0, options: TrainOptions) -> Trained {
    let (device, data) = (Device::flex(), dataset());
    let host = TestHost::never_stopping();
    let job = Job {
        model,
        device: &device,
        dataset: &data,
        options,
        batch_size: 3,
    };
    pollster::block_on(run_job(job, &mut EmbeddingCache::default(), &host));
    match host.events.into_inner().pop() {
        Some(TrainEvent::Finished(trained)) => *trained,
        other => panic!("{other:?}"),
    }
}

fn has(text: &str, needle: &str) {
    assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
}

/// No f32 noise: every number of the f32 sections prints as its f32 does (0.2, not 0.20000000298023224).
fn as_typed(value: &Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            assert_eq!(x.to_string(), (x as f32).to_string(), "f32 noise in {value}");
        }
        Value::Array(items) => items.iter().for_each(as_typed),
        Value::Object(fields) => fields.values().for_each(as_typed),
        _ => {}
    }
}

fn checked_config(text: &str) -> Value {
    for noise in ["0000000", "9999999"] {
        assert!(!text.contains(noise), "float noise {noise:?} in:\n{text}");
    }
    let config: Value = serde_json::from_str(text).unwrap();
    for section in ["training_options", "metrics", "finetune"] {
        as_typed(&config[section]);
    }
    config
}

/// The epochs of metrics and of every run, counted from 1 as the card counts them.
fn epochs_from_one(config: &Value, report: &TrainingReport) {
    let best = report.best.epoch + 1;
    assert_eq!(config["metrics"]["best_epoch"], best);
    assert_eq!(config["metrics"]["epochs_run"], report.history.len());
    for (run, history) in config["finetune"]["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(&report.runs)
    {
        let rows = run["history"].as_array().unwrap();
        assert_eq!(rows.len(), history.history.len());
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["epoch"], i + 1, "history counts from 1: {row}");
        }
        let best_row = &rows[run["best_epoch"].as_u64().unwrap() as usize - 1];
        assert_eq!(best_row["val_loss"], run["best_val_loss"], "best_epoch names its row");
    }
}

/// The classes table: each class's held-out (or training) images as the confusion matrix counts them.
fn table_counts(card: &str, report: &TrainingReport) {
    let k = report.labels.len();
    for (i, label) in report.labels.iter().enumerate() {
        let images: usize = report.confusion.counts[i * k..(i + 1) * k].iter().sum();
        has(card, &format!("| {label} | {images} |"));
    }
}

#[test]
fn a_lora_models_card_and_config_say_what_trained() {
    let model = model();
    let mode = FinetuneMode::Lora {
        blocks: 2,
        rank: 4,
        alpha: 8.0,
    };
    let mut options = TrainOptions {
        epochs: 3,
        batch_size: 2,
        learning_rate: 0.002,
        // Set in the form, but a LoRA run trains a linear head by AdamW: none of these applies.
        head: HeadOptions {
            hidden_units: 64,
            decoupled_weight_decay: true,
            ..Default::default()
        },
        ..TrainOptions::default()
    }
    .with_mode(mode);
    options.deep.augment.views = 2;
    let trained = train(&model, options.clone());
    let report = &trained.report;
    let used_lr = options.backbone_lr(mode);
    assert_eq!((options.deep.backbone_lr, used_lr), (None, 0.001), "the mode's default");

    let shipped = std::fs::read(SHIPPED).unwrap();
    let files = bundle_files(&shipped, &trained, None).unwrap();
    let bytes = |name: &str| files.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let file = |name: &str| String::from_utf8(bytes(name)).unwrap();
    let card = file("README.md");
    has(&card, "LoRA adapters on the last blocks");
    has(&card, "LoRA: rank 4, alpha 8");
    has(&card, "Backbone learning rate: 0.001");
    has(
        &card,
        "AdamW, head learning rate 0.002, weight decay 0.01, linear warm-up over 5.0 % of the steps then cosine decay",
    );
    has(&card, "Head: linear");
    assert!(
        !card.contains("weight decay 0.0001") && !card.contains("MLP"),
        "the head-only run's recipe:\n{card}"
    );
    has(
        &card,
        &format!("best epoch {} of {}", report.best.epoch + 1, report.history.len()),
    );
    // Six images at 20 %: each class of three rounds to one held out, so 2 of 6, not the 20 % asked for.
    assert_eq!((report.num_train, report.num_val), (4, 2));
    has(&card, "2 of 6 images held out (33.3%)");
    has(&card, &accuracy_summary(report.val_accuracy, 4, 2));
    has(&card, "too few to trust");
    has(&card, "| class | held-out images | held-out accuracy |");
    table_counts(&card, report);

    let text = file("config.json");
    assert_eq!(text, config_json_of(report), "the bundle's config.json is the app's");
    has(&text, "\"val_fraction\": 0.2,");
    let config = checked_config(&text);
    let o = &config["training_options"];
    for key in HEAD_ONLY {
        assert!(o.get(key).is_none(), "{key} did not apply to a LoRA run: {o}");
    }
    assert_eq!(config["architecture"], "efficientnet_lite0 + linear head");
    assert_eq!(
        (&o["learning_rate"], &o["backbone_learning_rate"]),
        (&json!(0.002), &json!(0.001))
    );
    assert_eq!(
        (&o["deep_weight_decay"], &o["warmup_fraction"]),
        (&json!(0.01), &json!(0.05))
    );
    let f = &config["finetune"];
    assert_eq!(
        (&f["mode"], &f["lora_rank"], &f["lora_alpha"]),
        (&json!("lora"), &json!(4), &json!(8.0))
    );
    assert_eq!(
        [
            &f["head_lr"],
            &f["backbone_lr"],
            &f["weight_decay"],
            &f["warmup_fraction"]
        ],
        [&json!(0.002), &json!(0.001), &json!(0.01), &json!(0.05)]
    );
    epochs_from_one(&config, report);

    // Opened again, the bundle gives back the options that trained it (the unused part at its defaults).
    let opened = open_model(bytes("model.safetensors"), Some(&text), None).unwrap();
    let back = opened.to_trained(&shipped).unwrap().report;
    let expected = TrainOptions {
        head: HeadOptions::default(),
        deep: DeepOptions {
            backbone_lr: Some(used_lr),
            ..options.deep.clone()
        },
        ..options.clone()
    };
    assert_eq!(back.options, expected);
    assert_eq!(back.best.epoch, report.best.epoch);

    // A deep run on a large set validates every so many images: the card counts rounds, as the page does.
    let mut rounds = report.clone();
    rounds.runs[0].deep.as_mut().unwrap().round_images = 100;
    has(&model_card(&rounds, None), "best round ");
}

#[test]
fn a_head_only_models_card_and_config_carry_its_options_alone() {
    let options = TrainOptions {
        epochs: 4,
        finetune: FinetuneChoice::Head,
        ..TrainOptions::default()
    };
    let trained = train(&model(), options);
    let report = &trained.report;
    let card = model_card(report, Some(&[3, 3]));
    has(&card, "Kept model: head only");
    has(&card, "Adam, learning rate 0.001, weight decay 0.0001");
    has(&card, "Head: linear (1280 → K)");
    assert!(!card.contains("AdamW") && !card.contains("warm-up"), "{card}");
    has(
        &card,
        &format!("best epoch {} of {}", report.best.epoch + 1, report.history.len()),
    );
    has(
        &card,
        &accuracy_summary(report.val_accuracy, report.num_train, report.num_val),
    );
    has(&card, "2 of 6 images held out (33.3%); 20.0 % of each class asked for");
    has(&card, "| class | images | held-out images | held-out accuracy |");
    let k = report.labels.len();
    for (i, label) in report.labels.iter().enumerate() {
        let held_out: usize = report.confusion.counts[i * k..(i + 1) * k].iter().sum();
        has(&card, &format!("| {label} | 3 | {held_out} |"));
    }

    let text = config_json_of(report);
    for needle in [
        "\"val_fraction\": 0.2,",
        "\"learning_rate\": 0.001,",
        "\"weight_decay\": 0.0001\n",
    ] {
        has(&text, needle);
    }
    let config = checked_config(&text);
    let o = &config["training_options"];
    for key in DEEP_ONLY.into_iter().chain(["dropout"]) {
        assert!(
            o.get(key).is_none(),
            "{key} did not apply to a linear head-only run: {o}"
        );
    }
    assert_eq!(
        (&o["hidden_units"], &o["decoupled_weight_decay"]),
        (&json!(0), &json!(false))
    );
    assert!(config.get("finetune").is_none(), "no deeper run: {config}");
    epochs_from_one(&config, report);
    let per_class = &config["metrics"]["per_class_val_accuracy"];
    for (label, accuracy) in report.labels.iter().zip(&report.per_class_accuracy) {
        assert_eq!(
            per_class[label].as_f64().map(|x| x as f32),
            Some(*accuracy),
            "{per_class}"
        );
    }
}

#[test]
fn without_held_out_images_the_card_says_its_figures_are_training_figures() {
    let options = TrainOptions {
        epochs: 3,
        val_fraction: 0.0,
        finetune: FinetuneChoice::Head,
        head: HeadOptions {
            hidden_units: 8,
            dropout: 0.3,
            ..Default::default()
        },
        ..TrainOptions::default()
    };
    let trained = train(&model(), options);
    let report = &trained.report;
    assert_eq!((report.num_train, report.num_val), (6, 0));
    let card = model_card(report, None);
    has(&card, &accuracy_summary(report.val_accuracy, 6, 0));
    has(&card, "no held-out images (validation fraction 0)");
    has(&card, "the lowest on the training images");
    has(&card, "| class | training images | training accuracy |");
    has(
        &card,
        "Validation: no images held out: every figure is on the 6 training images",
    );
    assert!(
        !card.contains("held-out accuracy") && !card.contains("of each class asked for"),
        "{card}"
    );
    table_counts(&card, report);
    has(&card, "MLP (1280 → 8 → K, ReLU, dropout 0.3)");

    let text = config_json_of(report);
    has(&text, "\"val_fraction\": 0.0,");
    has(&text, "\"dropout\": 0.3,");
    let config = checked_config(&text);
    assert_eq!(config["training_options"]["hidden_units"], 8);
    assert_eq!(
        config["architecture"],
        "efficientnet_lite0 + mlp head (hidden 8, relu, dropout 0.3)"
    );
    epochs_from_one(&config, report);
}

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
