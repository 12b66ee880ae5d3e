//! What the page keeps in the browser's storage, one entry per thing, so that it scales to thousands of images
//! and a save that stops half-way leaves the last complete state readable:
//!
//! - each image once, under [`image_entry`] (named by its pixel key): its prepared 224×224 pixels as a
//!   lossless PNG ([`encode_image`] / [`decode_image`]; the key is checked on the way back);
//! - features (embeddings) as they are computed, one entry per batch under [`features_entry`]
//!   ([`encode_features`] / [`decode_features`]);
//! - the index, written after the images it names: the classes, the sample names and keys, no pixels
//!   ([`encode_index`], read back with `snapshot::decode`). A rename or a removal rewrites only the index.
//!
//! Entries are written before the index that names them and removed only after an index that no longer
//! names them was written, so whatever the index names is there.

use super::snapshot;
use super::{Dataset, pixel_key};
use crate::preprocess::IMAGE_SIZE;

/// Where the index lives.
pub const INDEX_ENTRY: &str = "store/index.bin";
/// Prefix of every image entry.
pub const IMAGE_PREFIX: &str = "store/images/";
/// Prefix of every features entry.
pub const FEATURES_PREFIX: &str = "store/features/";

const PIXELS: usize = IMAGE_SIZE * IMAGE_SIZE * 3;
const FEATURES_MAGIC: &[u8; 4] = b"AJFT";
const FEATURES_VERSION: u32 = 1;

/// The index: the dataset's classes, names and keys, without pixels.
pub fn encode_index(dataset: &Dataset) -> Vec<u8> {
    snapshot::encode_without_pixels(dataset)
}

/// The entry name of the image with this pixel key.
pub fn image_entry(key: u64) -> String {
    format!("{IMAGE_PREFIX}{key:016x}.png")
}

/// The pixel key an image entry's name carries (`None` for any other name).
pub fn image_key(entry: &str) -> Option<u64> {
    let hex = entry.rsplit_once(IMAGE_PREFIX)?.1.strip_suffix(".png")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

/// The entry name of a batch of features; it ends with how many rows it holds, so they can be counted from
/// the names alone.
pub fn features_entry(first_key: u64, rows: usize) -> String {
    format!("{FEATURES_PREFIX}{first_key:016x}-{rows}.bin")
}

/// How many rows a features entry holds, from its name (`None` for any other name).
pub fn features_rows(entry: &str) -> Option<usize> {
    let name = entry.rsplit_once(FEATURES_PREFIX)?.1.strip_suffix(".bin")?;
    name.split_once('-')?.1.parse().ok()
}

/// Prepared pixels (224×224 RGB) as a PNG.
pub fn encode_image(pixels: &[u8]) -> Result<Vec<u8>, String> {
    use image::ImageEncoder;
    if pixels.len() != PIXELS {
        return Err(format!("an image has {} bytes, not {PIXELS}", pixels.len()));
    }
    let mut out = Vec::with_capacity(PIXELS / 2);
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    encoder
        .write_image(
            pixels,
            IMAGE_SIZE as u32,
            IMAGE_SIZE as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("could not compress an image: {e}"))?;
    Ok(out)
}

/// The pixels of an image entry, checked against the key it is stored under.
pub fn decode_image(bytes: &[u8], key: u64) -> Result<Vec<u8>, String> {
    let name = image_entry(key);
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| format!("{name} is damaged ({e})"))?;
    if (image.width(), image.height()) != (IMAGE_SIZE as u32, IMAGE_SIZE as u32) {
        return Err(format!(
            "{name} is {}×{} pixels, not {IMAGE_SIZE}×{IMAGE_SIZE}",
            image.width(),
            image.height()
        ));
    }
    let pixels = image.into_rgb8().into_raw();
    if pixel_key(&pixels) != key {
        return Err(format!("{name} does not hold the image it is named after"));
    }
    Ok(pixels)
}

/// A batch of features: `keys.len()` rows of equal length, one after the other.
///
/// Layout, little-endian: `AJFT`, version u32, rows u32, dim u32, the keys (u64 each), the values (f32).
pub fn encode_features(keys: &[u64], rows: &[f32]) -> Result<Vec<u8>, String> {
    if keys.is_empty() || !rows.len().is_multiple_of(keys.len()) {
        return Err(format!("{} values do not split into {} rows", rows.len(), keys.len()));
    }
    let dim = rows.len() / keys.len();
    let mut out = Vec::with_capacity(16 + keys.len() * 8 + rows.len() * 4);
    out.extend_from_slice(FEATURES_MAGIC);
    for n in [FEATURES_VERSION, keys.len() as u32, dim as u32] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    keys.iter().for_each(|k| out.extend_from_slice(&k.to_le_bytes()));
    rows.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    Ok(out)
}

/// The keys and rows of a features entry, or what is wrong with it.
pub fn decode_features(bytes: &[u8]) -> Result<(Vec<u64>, Vec<f32>), String> {
    if bytes.get(..4) != Some(FEATURES_MAGIC.as_slice()) {
        return Err("not a features entry".into());
    }
    let word = |i: usize| {
        bytes
            .get(4 + 4 * i..8 + 4 * i)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| "a features entry is truncated".to_string())
    };
    let (version, n, dim) = (word(0)?, word(1)?, word(2)?);
    if version != FEATURES_VERSION as usize {
        return Err(format!(
            "features saved by another version of the app (format {version})"
        ));
    }
    let expected = n.checked_mul(8 + 4 * dim).and_then(|b| b.checked_add(16));
    if expected != Some(bytes.len()) || n == 0 || dim == 0 {
        return Err(format!(
            "a features entry of {} bytes cannot hold {n} rows of {dim}",
            bytes.len()
        ));
    }
    let keys = bytes[16..16 + 8 * n]
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let rows = bytes[16 + 8 * n..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    Ok((keys, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ClassData, Sample};

    /// A smooth image with some texture, like an upscaled photo.
    fn photo(seed: u32) -> Vec<u8> {
        (0..PIXELS as u32)
            .map(|i| {
                let (x, y, c) = ((i / 3) % 224, (i / 3) / 224, i % 3);
                ((x * (c + 1) + y * seed + (x * y) % 7) % 256) as u8
            })
            .collect()
    }

    #[test]
    fn images_round_trip_losslessly_and_are_checked() {
        let pixels = photo(3);
        let key = pixel_key(&pixels);
        let png = encode_image(&pixels).unwrap();
        assert!(png.len() < PIXELS, "{} bytes", png.len());
        assert_eq!(decode_image(&png, key).unwrap(), pixels);
        let wrong = decode_image(&png, key ^ 1).unwrap_err();
        assert!(
            wrong.contains(&image_entry(key ^ 1)) && wrong.contains("does not hold"),
            "{wrong}"
        );
        assert!(
            decode_image(&png[..png.len() / 2], key)
                .unwrap_err()
                .contains("damaged")
        );
        assert!(decode_image(b"not a png", key).unwrap_err().contains("damaged"));
        assert!(encode_image(&[0; 12]).unwrap_err().contains("not 150528"));
        let small = {
            let mut out = Vec::new();
            image::RgbImage::new(8, 8)
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        assert!(decode_image(&small, key).unwrap_err().contains("8×8 pixels"));
    }

    #[test]
    fn entry_names_carry_keys_and_counts() {
        assert_eq!(image_key(&image_entry(0xdead_beef)), Some(0xdead_beef));
        assert_eq!(
            image_key("https://x/store/images/00000000deadbeef.png"),
            Some(0xdead_beef)
        );
        assert_eq!(image_key("store/images/xyz.png"), None);
        assert_eq!(image_key(INDEX_ENTRY), None);
        assert_eq!(features_rows(&features_entry(7, 16)), Some(16));
        assert_eq!(
            features_rows("https://x/store/features/0000000000000007-3.bin"),
            Some(3)
        );
        assert_eq!(features_rows(&image_entry(7)), None);
    }

    #[test]
    fn features_round_trip_and_damage_is_named() {
        let keys = [1u64, u64::MAX];
        let rows = [0.5f32, -1.0, 2.0, 3.5, f32::MIN_POSITIVE, 0.0];
        let bytes = encode_features(&keys, &rows).unwrap();
        assert_eq!(decode_features(&bytes).unwrap(), (keys.to_vec(), rows.to_vec()));
        assert!(encode_features(&keys, &rows[..5]).is_err());
        assert!(encode_features(&[], &[]).is_err());
        for cut in [0, 3, 10, 16, bytes.len() - 1] {
            assert!(decode_features(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut foreign = bytes.clone();
        foreign[0] = b'X';
        assert_eq!(decode_features(&foreign).unwrap_err(), "not a features entry");
        let mut version = bytes.clone();
        version[4] = 9;
        assert!(decode_features(&version).unwrap_err().contains("another version"));
        let mut huge = bytes;
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_features(&huge).unwrap_err().contains("cannot hold"));
    }

    #[test]
    fn the_index_names_every_image_without_pixels() {
        let a = photo(1);
        let dataset = Dataset {
            classes: vec![
                ClassData::new("cats", vec![Sample::new("a.jpg", a.clone())]),
                ClassData::new("dogs", vec![Sample::stored("b.jpg", 42)]),
            ],
        };
        let index = encode_index(&dataset);
        assert!(index.len() < 100, "{} bytes", index.len());
        let back = snapshot::decode(&index).unwrap();
        assert_eq!(back.class_names(), ["cats", "dogs"]);
        assert_eq!(back.classes[0].samples[0], Sample::stored("a.jpg", pixel_key(&a)));
        assert_eq!(back.classes[1].samples[0].key(), 42);
        assert_eq!(back.fingerprint(), dataset.fingerprint());
    }
}
