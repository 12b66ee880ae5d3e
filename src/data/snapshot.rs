//! A dataset as bytes and back: how the page hands it to the training worker, and (without pixels) the index
//! the page keeps in storage (`store`). Pixels travel as prepared (224×224 RGB), so nothing is decoded again;
//! a sample whose pixels are kept out of memory travels as its name and key only.
//!
//! Layout, little-endian: `AJDS`, version u32, class count u32, then per class its name and sample count,
//! then per sample its name, its pixel key (u64) and its pixels (0 bytes when not in memory). Strings and
//! pixel blocks are u32-length-prefixed. Version 1 (the earlier single-blob save) had no keys and always
//! pixels; it is still read.

use super::{ClassData, Dataset, Sample, pixel_key};
use crate::preprocess::IMAGE_SIZE;

const MAGIC: &[u8; 4] = b"AJDS";
const VERSION: u32 = 2;
const PIXELS: usize = IMAGE_SIZE * IMAGE_SIZE * 3;

/// Every sample with the pixels it has in memory.
pub fn encode(dataset: &Dataset) -> Vec<u8> {
    encode_with(dataset, true)
}

/// Names and keys only.
pub fn encode_without_pixels(dataset: &Dataset) -> Vec<u8> {
    encode_with(dataset, false)
}

fn encode_with(dataset: &Dataset, pixels: bool) -> Vec<u8> {
    let in_memory = if pixels {
        dataset
            .classes
            .iter()
            .flat_map(|c| &c.samples)
            .filter(|s| s.in_memory())
            .count()
    } else {
        0
    };
    let mut out = Vec::with_capacity(16 + dataset.num_images() * 64 + in_memory * PIXELS);
    out.extend_from_slice(MAGIC);
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(dataset.classes.len() as u32).to_le_bytes());
    for class in &dataset.classes {
        put(&mut out, class.name.as_bytes());
        out.extend_from_slice(&(class.samples.len() as u32).to_le_bytes());
        for sample in &class.samples {
            put(&mut out, sample.name.as_bytes());
            out.extend_from_slice(&sample.key().to_le_bytes());
            put(&mut out, if pixels { &sample.pixels } else { &[] });
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {} of {}", self.at, self.bytes.len()))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn block(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.block()?.to_vec()).map_err(|_| "a name is not valid UTF-8".to_string())
    }
}

/// The dataset back from [`encode`]'s bytes, or what is wrong with them (nothing is partly restored).
pub fn decode(bytes: &[u8]) -> Result<Dataset, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4).ok() != Some(MAGIC.as_slice()) {
        return Err("not a saved dataset".into());
    }
    let version = r.u32()?;
    if version != 1 && version != VERSION as usize {
        return Err(format!("saved by another version of the app (format {version})"));
    }
    let classes = r.u32()?;
    let mut dataset = Dataset::default();
    for _ in 0..classes {
        let name = r.string()?;
        let count = r.u32()?;
        // Capped by what the bytes can hold, so a corrupt count cannot ask for a huge allocation.
        let mut samples = Vec::with_capacity(count.min(bytes.len() / 16));
        for _ in 0..count {
            let sample_name = r.string()?;
            let key = if version == 1 { None } else { Some(r.u64()?) };
            let pixels = r.block()?;
            let sample = match (key, pixels.len()) {
                (Some(key), 0) => Sample::stored(sample_name, key),
                (_, PIXELS) => Sample::new(sample_name, pixels.to_vec()),
                (_, n) => return Err(format!("image “{sample_name}” has {n} bytes, not {PIXELS}")),
            };
            if key.is_some_and(|key| sample.in_memory() && pixel_key(&sample.pixels) != key) {
                return Err(format!("image “{}” does not match its key", sample.name));
            }
            samples.push(sample);
        }
        dataset.classes.push(ClassData::new(name, samples));
    }
    if r.at != bytes.len() {
        return Err(format!("{} unexpected bytes at the end", bytes.len() - r.at));
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, value: u8) -> Sample {
        Sample::new(name, vec![value; PIXELS])
    }

    fn dataset() -> Dataset {
        Dataset {
            classes: vec![
                ClassData::new("chats é", vec![sample("a.jpg", 1), sample("sub/b.png", 2)]),
                ClassData::new("dogs", vec![sample("c.jpg", 3)]),
                ClassData::new("empty", vec![]),
            ],
        }
    }

    #[test]
    fn round_trips() {
        let mut d = dataset();
        assert_eq!(decode(&encode(&d)).unwrap(), d);
        assert_eq!(decode(&encode(&Dataset::default())).unwrap(), Dataset::default());
        // Pixels kept elsewhere travel as their key.
        d.classes[1].samples.push(Sample::stored("kept.jpg", 77));
        assert_eq!(decode(&encode(&d)).unwrap(), d);
        let light = decode(&encode_without_pixels(&d)).unwrap();
        assert!(light.classes.iter().flat_map(|c| &c.samples).all(|s| !s.in_memory()));
        assert_eq!(light.fingerprint(), d.fingerprint());
    }

    #[test]
    fn the_earlier_format_is_still_read() {
        let mut v1 = Vec::new();
        v1.extend_from_slice(b"AJDS");
        for n in [1u32, 1, 1] {
            v1.extend_from_slice(&n.to_le_bytes());
        }
        v1.push(b'x'); // the class name "x", then 1 sample
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.push(b'a');
        v1.extend_from_slice(&(PIXELS as u32).to_le_bytes());
        v1.extend_from_slice(&[5; PIXELS]);
        let d = decode(&v1).unwrap();
        assert_eq!(d.classes[0].samples, [sample("a", 5)]);
    }

    #[test]
    fn damaged_bytes_are_refused_with_a_reason() {
        let bytes = encode(&dataset());
        for cut in [0, 3, 10, 30, bytes.len() / 2, bytes.len() - 1] {
            let error = decode(&bytes[..cut]).unwrap_err();
            assert!(
                error.contains("truncated") || error.contains("not a saved"),
                "{cut}: {error}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).unwrap_err().contains("unexpected bytes"));
        let mut version = bytes.clone();
        version[4] = 9;
        assert!(decode(&version).unwrap_err().contains("another version"));
        assert_eq!(decode(b"{\"classes\": []}").unwrap_err(), "not a saved dataset");
        let mut wrong_key = bytes.clone();
        wrong_key[4 + 4 + 4 + 4 + "chats é".len() + 4 + 4 + "a.jpg".len()] ^= 1; // a.jpg's key
        assert!(
            decode(&wrong_key)
                .unwrap_err()
                .contains("“a.jpg” does not match its key")
        );
        // A sample whose pixel block has the wrong size (length prefix of a.jpg's pixels changed).
        let mut short = encode(&Dataset {
            classes: vec![ClassData::new("x", vec![Sample::new("a", vec![0; 10])])],
        });
        assert!(decode(&short).unwrap_err().contains("not 150528"));
        short[20] = 0xff; // the sample count: now far more than the bytes hold
        assert!(decode(&short).is_err());
    }
}
