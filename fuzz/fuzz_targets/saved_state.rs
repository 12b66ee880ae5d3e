//! The saved dataset read back after a reload (`snapshot::decode`): must never panic or allocate what the
//! bytes cannot hold; what it accepts encodes back to the same bytes.
#![no_main]

use ajuste::data::snapshot::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(dataset) = decode(data) {
        assert_eq!(encode(&dataset), data);
    }
});
