//! What the config.json tests share: the options each kind of run alone uses, and the checks that the text has
//! no float noise.

use serde_json::Value;

pub const HEAD_ONLY: [&str; 4] = ["weight_decay", "decoupled_weight_decay", "hidden_units", "dropout"];
pub const DEEP_ONLY: [&str; 6] = [
    "backbone_learning_rate",
    "deep_weight_decay",
    "warmup_fraction",
    "augment",
    "cache_bytes",
    "budget_seconds",
];

pub fn has(text: &str, needle: &str) {
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

pub fn checked_config(text: &str) -> Value {
    for noise in ["0000000", "9999999"] {
        assert!(!text.contains(noise), "float noise {noise:?} in:\n{text}");
    }
    let config: Value = serde_json::from_str(text).unwrap();
    for section in ["training_options", "metrics", "finetune"] {
        as_typed(&config[section]);
    }
    config
}
