//! A `model.safetensors` offered to the weights loader: parsing, every tensor's name, shape and dtype checks,
//! batch-norm folding. Must never panic; what it accepts is complete and finite.
#![no_main]

use ajuste::model::read_backbone;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(weights) = read_backbone(data) {
        assert_eq!(weights.blocks.len(), 16);
        assert!(weights.classifier.weight.iter().all(|v| v.is_finite()));
    }
});
