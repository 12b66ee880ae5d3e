//! `Vec<f32>` in JSON as base64 of its little-endian bytes (`#[serde(with = "crate::floats")]`). A fine-tuned
//! model's weights travel from the worker to the page, and into storage and project files, as one string instead
//! of one JSON number per weight: parsing the 330,000 numbers of a LoRA model held the page's thread for tens of
//! milliseconds (a last-blocks model has 2.5 million), where decoding base64 costs a few. Reading also takes the
//! old form, an array of numbers, so models saved before still open. Exact: every bit of every value, NaN too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

/// The values as little-endian bytes (the layout of safetensors, checkpoints and these base64 strings).
pub fn to_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes back to values; a trailing partial value is ignored (callers check the length).
pub fn from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The largest `|a[i] - b[i]|`, NaN when any difference is NaN (a plain `fold(0.0, f32::max)` skips NaN, so a
/// check `gap < tolerance` would pass on NaN outputs). Panics when the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    max_abs_of(a.iter().zip(b).map(|(x, y)| x - y))
}

/// The largest `|v|`, NaN when any value is NaN.
pub fn max_abs(values: &[f32]) -> f32 {
    max_abs_of(values.iter().copied())
}

fn max_abs_of(values: impl Iterator<Item = f32>) -> f32 {
    values.fold(0.0, |m, v| {
        if m.is_nan() || v.is_nan() {
            f32::NAN
        } else {
            m.max(v.abs())
        }
    })
}

pub fn serialize<S: Serializer>(values: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(to_le_bytes(values)))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Floats {
    Base64(String),
    Numbers(Vec<f32>),
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
    match Floats::deserialize(deserializer)? {
        Floats::Numbers(values) => Ok(values),
        Floats::Base64(text) => {
            let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
            if bytes.len() % 4 != 0 {
                return Err(serde::de::Error::custom(format!(
                    "{} bytes of float32 values: not a multiple of 4",
                    bytes.len()
                )));
            }
            Ok(from_le_bytes(&bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct T {
        #[serde(with = "super")]
        v: Vec<f32>,
    }

    #[test]
    fn round_trips_every_bit_as_one_string_and_reads_the_old_arrays() {
        let v = vec![0.1, -0.0, f32::MIN_POSITIVE, 1e30, f32::INFINITY, 3.0];
        let json = serde_json::to_string(&T { v: v.clone() }).unwrap();
        assert!(json.starts_with("{\"v\":\"") && !json.contains(','), "{json}");
        let back: T = serde_json::from_str(&json).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.v), bits(&v));
        let nan: T = serde_json::from_str(&serde_json::to_string(&T { v: vec![f32::NAN] }).unwrap()).unwrap();
        assert!(nan.v[0].is_nan());
        let old: T = serde_json::from_str("{\"v\":[0.5,-2.0]}").unwrap();
        assert_eq!(old.v, vec![0.5, -2.0]);
        let err = serde_json::from_str::<T>("{\"v\":\"AAAA\"}")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a multiple of 4"), "{err}");
    }

    #[test]
    fn largest_difference_is_nan_when_any_value_is() {
        assert_eq!(super::max_abs_diff(&[1.0, -2.0], &[1.5, 1.0]), 3.0);
        assert_eq!(super::max_abs(&[0.5, -4.0]), 4.0);
        // A NaN anywhere, first or later, makes a `gap < tolerance` check fail.
        assert!(super::max_abs_diff(&[f32::NAN, 1.0], &[0.0, 1.0]).is_nan());
        assert!(super::max_abs_diff(&[1.0, 1.0], &[1.0, f32::NAN]).is_nan());
        assert!(super::max_abs(&[0.0, f32::NAN, 9.0]).is_nan());
        let gap = super::max_abs_diff(&[f32::NAN], &[0.0]);
        assert!(gap.partial_cmp(&1e-3).is_none(), "a tolerance check fails on it");
    }
}
