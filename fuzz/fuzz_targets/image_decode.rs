//! Image bytes → the model's input: format sniffing, the size checks before decoding, the decoders, EXIF
//! orientation, alpha over white, crop and Pillow's resampling, normalisation. Must never panic; what it
//! accepts is always a 224×224 RGB image.
#![no_main]

use ajuste::preprocess::{IMAGE_SIZE, normalize_hwc, prepare_rgb};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pixels) = prepare_rgb(data) {
        assert_eq!(pixels.len(), IMAGE_SIZE * IMAGE_SIZE * 3);
        let input = normalize_hwc(&pixels);
        assert!(input.iter().all(|v| (-1.0..=1.0).contains(v)));
    }
});
