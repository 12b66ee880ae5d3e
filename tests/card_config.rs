//! The model card (the bundle's README.md) and config.json say what trained (issue 28, items 3-5): the
//! optimiser, learning rates and options of the runs made and no others, epochs counted from 1 everywhere, the
//! images held out as counted (with the page's caution), and the values as the user chose them, without the
//! digits an f32 widened to f64 adds. Checked against the report of small real jobs.

mod common;

use ajuste::export::{bundle_files, config_json_of, model_card, open_model};
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::{DeepOptions, FinetuneChoice, FinetuneMode, HeadOptions, TrainOptions};
use ajuste::train::TrainingReport;
use ajuste::train::honest::accuracy_summary;
use burn::tensor::Device;
use common::config::{DEEP_ONLY, HEAD_ONLY, checked_config, has};
use common::job_host::trained;
use serde_json::{Value, json};

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);
fn model() -> EfficientNetLite0 {
    load_efficientnet(&std::fs::read(SHIPPED).unwrap(), &Device::flex()).unwrap()
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
    let trained = trained(&model, options.clone());
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
    let trained = trained(&model(), options);
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
    let trained = trained(&model(), options);
    let report = &trained.report;
    assert_eq!((report.num_train, report.num_val), (6, 0));
    let card = model_card(report, None);
    has(&card, &accuracy_summary(report.val_accuracy, 6, 0));
    has(&card, "no held-out images: ");
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
