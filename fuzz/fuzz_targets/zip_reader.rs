//! A dropped `.zip`: the archive reader (central directory, entry headers, inflating with the size caps) and the
//! ingest of what it holds into a dataset that already has a class. Must never panic; whatever is refused
//! leaves the loaded class as it was.
#![no_main]

use ajuste::data::{ClassData, Dataset, Sample};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = ClassData::new("loaded", vec![Sample::new("a.jpg", vec![7; 224 * 224 * 3])]);
    let mut dataset = Dataset {
        classes: vec![loaded.clone()],
    };
    let report = dataset.add_zip("fuzz.zip", data);
    assert_eq!(dataset.num_images(), 1 + report.added);
    assert!(dataset.classes[0].samples.starts_with(&loaded.samples));
    for class in &dataset.classes {
        assert!(class.samples.iter().all(|s| s.pixels.len() == 224 * 224 * 3));
    }
});
