//! "None of these" (issue 29, part 3): the threshold suggested from a real job's validation images, a threshold the
//! person set, both written into config.json, the model card and Teachable Machine's metadata.json with what they do on the validation images, and
//! the set threshold back from an exported model opened again.

mod common;

use ajuste::export::{bundle_files, open_model, tfjs_model};
use ajuste::model::load_efficientnet;
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::train::threshold::{effect, suggest};
use burn::tensor::Device;
use common::job_host::trained;
use serde_json::Value;

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files.iter().find(|(n, _)| n == name).expect(name).1
}

#[test]
fn the_threshold_is_suggested_set_exported_and_opened_again() {
    let weights = std::fs::read(SHIPPED).unwrap();
    let model = load_efficientnet(&weights, &Device::flex()).unwrap();
    let options = TrainOptions {
        epochs: 4,
        val_fraction: 0.5,
        finetune: FinetuneChoice::Head,
        ..TrainOptions::default()
    };
    let mut kept = trained(&model, options);
    let report = &kept.report.clone();
    assert!(!report.predictions.is_empty(), "validation images were predicted");
    let suggested = suggest(&report.predictions);
    assert_eq!(report.none_of_these(), suggested, "no choice made: the suggestion");

    let files = bundle_files(&weights, &kept, None).unwrap();
    let config: Value = serde_json::from_slice(file(&files, "config.json")).unwrap();
    let none = &config["none_of_these"];
    assert_eq!(none["threshold"].as_f64().map(|t| t as f32), Some(suggested), "{none}");
    assert_eq!(none["suggested"], none["threshold"]);
    let seen = effect(&report.predictions, suggested);
    assert_eq!(none["validation"]["right"], seen.right);
    assert_eq!(none["validation"]["wrong"], seen.wrong);
    assert_eq!(seen.right + seen.wrong, report.predictions.len());

    // The person moves it: above every confidence, every right answer is refused and every wrong one caught.
    kept.report.none_threshold = Some(1.0);
    let files = bundle_files(&weights, &kept, None).unwrap();
    let config: Value = serde_json::from_slice(file(&files, "config.json")).unwrap();
    let none = &config["none_of_these"];
    assert_eq!(none["threshold"], 1.0);
    assert_eq!(none["validation"]["right_kept"], 0);
    assert_eq!(none["validation"]["wrong_caught"], none["validation"]["wrong"]);
    let card = String::from_utf8(file(&files, "README.md").to_vec()).unwrap();
    assert!(card.contains("## \"None of these\""), "{card}");
    assert!(card.contains("below **100.0 %**"), "{card}");
    assert!(
        card.contains(&format!("keeps 0 of {} right answers", seen.right)),
        "{card}"
    );

    // Teachable Machine's metadata.json carries it too, beside tmImage's own fields.
    let tm = tfjs_model(file(&files, "model.safetensors"))
        .unwrap()
        .with_none_of_these(0.37);
    let metadata: Value = serde_json::from_str(&tm.metadata_json).unwrap();
    assert_eq!(metadata["userMetadata"]["noneOfTheseThreshold"], 0.37);
    assert_eq!(metadata["labels"], config["labels"]);

    // Opened again (*Open model*), the model keeps the threshold its config.json gives.
    let opened = open_model(
        file(&files, "model.safetensors").to_vec(),
        Some(std::str::from_utf8(file(&files, "config.json")).unwrap()),
        None,
    )
    .unwrap();
    let again = opened.to_trained(&weights).unwrap();
    assert_eq!(again.report.none_threshold, Some(1.0));
    assert_eq!(again.report.none_of_these(), 1.0);
}
