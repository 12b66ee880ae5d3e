//! Image bytes → the model's input, as the reference prepared its data (docs/model.md): 8-bit RGB with
//! alpha composited over white, centre square crop of the full short side, resize to 224×224 with Pillow's
//! antialiased BICUBIC (reimplemented below, bit-exact on the reference photos), then `(u8 - 127) / 128` in NCHW.
//!
//! One addition to the reference: a JPEG/WebP/PNG EXIF orientation is applied first, so a phone photo is used the
//! way the browser shows it (none of the reference images carries one, so their results are unchanged).
//!
//! Limits, checked from the header before any pixel buffer exists (a tiny file can declare 100000×100000):
//! at most [`MAX_SOURCE_PIXELS`]; the decoder's own allocations are capped by [`MAX_DECODE_BYTES`]. There is no
//! limit on a side by itself: an 8000×6000 photo is fine, it is shrunk to 224 anyway.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

pub const IMAGE_SIZE: usize = 224;
/// Largest source image, in pixels: 50 MP admits every phone's full-resolution JPEG (8160×6120 = 49.9 MP) while a
/// decoded image stays within a few hundred MB of the browser's 4 GB wasm memory.
pub const MAX_SOURCE_PIXELS: u64 = 50_000_000;
/// Cap on what a decoder may allocate: the largest accepted image at 8 bytes a pixel (16-bit RGBA PNG) plus
/// room for the decoder's working buffers. Decompression bombs hit the pixel check first; this is the backstop.
pub const MAX_DECODE_BYTES: u64 = MAX_SOURCE_PIXELS * 8 + (64 << 20);
/// The formats decoded (the `image` features this crate enables), for messages.
pub const SUPPORTED: &str = "JPEG, PNG, GIF, WebP or BMP";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    /// Content not recognised as any image format.
    #[error("not an image, or an image format that is not supported (use {SUPPORTED})")]
    Unsupported,
    /// A recognised image format that is not decoded here (TIFF, HEIC, AVIF, …).
    #[error("{0} images are not supported (use {SUPPORTED})")]
    UnsupportedFormat(String),
    #[error(
        "the image is too large: {width}×{height} pixels (the limit is {} megapixels)",
        MAX_SOURCE_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image has no pixels ({width}×{height})")]
    Empty { width: u32, height: u32 },
    #[error("the image is corrupt or truncated ({0})")]
    Corrupt(String),
    /// A supported format using a variant the decoder cannot read.
    #[error("this image cannot be decoded ({0}): save it again as JPEG or PNG")]
    Undecodable(String),
}

fn decoding_error(error: ImageError, width: u32, height: u32) -> PreprocessError {
    match error {
        ImageError::Limits(_) => PreprocessError::TooLarge { width, height },
        ImageError::Unsupported(u) => PreprocessError::Undecodable(u.to_string()),
        other => PreprocessError::Corrupt(other.to_string()),
    }
}

/// The format from the content (file names lie). Formats `image` knows but this build does not decode get
/// their name in the message.
fn sniff(bytes: &[u8]) -> Result<ImageFormat, PreprocessError> {
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP | ImageFormat::Bmp)) => {
            Ok(f)
        }
        Ok(other) => Err(PreprocessError::UnsupportedFormat(format!("{other:?}").to_uppercase())),
        // ISO-BMFF brands `image` does not sniff: what iPhones save by default.
        Err(_) if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" => match &bytes[8..12] {
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                Err(PreprocessError::UnsupportedFormat("HEIC".into()))
            }
            b"avif" | b"avis" => Err(PreprocessError::UnsupportedFormat("AVIF".into())),
            _ => Err(PreprocessError::Unsupported),
        },
        Err(_) => Err(PreprocessError::Unsupported),
    }
}

/// Whether a JPEG's main image runs to its end-of-image marker. The JPEG decoder `image` uses is lenient and
/// fills a cut-off image with grey instead of failing, which would put a half-grey photo in the training set.
/// Walks the marker segments (skipping APPn payloads, so an EXIF thumbnail's own end marker does not count) and
/// the entropy-coded scans; anything after the end marker (camera trailers) is ignored.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let mut pos = 2; // after SOI
    loop {
        // Tolerate stray bytes between segments, as decoders do, then skip 0xFF fill bytes.
        while pos < n && bytes[pos] != 0xFF {
            pos += 1;
        }
        while pos < n && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return false;
        };
        pos += 1;
        match marker {
            0xD9 => return true,
            0x00 | 0x01 | 0xD0..=0xD8 => continue, // no payload
            _ => {}
        }
        let Some(len) = bytes
            .get(pos..pos + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return false;
        };
        pos += len;
        if len < 2 || pos > n {
            return false;
        }
        if marker == 0xDA {
            // Scan data ends at the first marker that is neither a stuffed 0xFF00 nor a restart marker.
            loop {
                match bytes[pos.min(n)..].iter().position(|&b| b == 0xFF) {
                    None => return false,
                    Some(i) => pos += i,
                }
                match bytes.get(pos + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => pos += 2,
                    Some(0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Decodes with the size checks first: the header's dimensions are read before any pixel buffer is allocated.
/// The EXIF orientation, if any, is applied.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, PreprocessError> {
    let format = sniff(bytes)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    // Header only: a truncated or garbled header fails here, before the size is known.
    let mut decoder = reader.into_decoder().map_err(|e| decoding_error(e, 0, 0))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    if u64::from(width) * u64::from(height) > MAX_SOURCE_PIXELS || decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(PreprocessError::TooLarge { width, height });
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(PreprocessError::Corrupt("the JPEG data ends early".into()));
    }
    // A broken EXIF block is not worth refusing the photo over: use it unrotated.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| decoding_error(e, width, height))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// RGB with any alpha composited over white, with the integer arithmetic of Pillow's
/// `alpha_composite(white, img)` (libImaging/AlphaComposite.c; over an opaque white backdrop its coefficients
/// reduce to `a·128` and `(255 - a)·128`).
pub fn to_rgb_over_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut rgb = RgbImage::new(w, h);
    for (out, p) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p[3]);
        let blend = |c: u8| {
            let t = ((u32::from(c) * a + 255 * (255 - a)) << 7) + (0x80 << 7);
            ((((t >> 8) + t) >> 8) >> 7) as u8
        };
        *out = image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])]);
    }
    rgb
}

/// Centre square crop of the full short side (left = (w - side) / 2, rounded down, as the reference recipe),
/// resized to 224×224 as Pillow's BICUBIC does. The crop is never copied: the resampler reads it in place.
pub fn crop_and_resize(rgb: &RgbImage) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let side = w.min(h) as usize;
    let (left, top) = ((w as usize - side) / 2, (h as usize - side) / 2);
    let pixels = pillow::resize_square(rgb.as_raw(), w as usize, (left, top), side, IMAGE_SIZE);
    RgbImage::from_raw(IMAGE_SIZE as u32, IMAGE_SIZE as u32, pixels).unwrap_or_default()
}

/// Pillow's antialiased resampling (libImaging/Resample.c, `ImagingResample`) with its bicubic filter, step for
/// step: weights computed in f64, normalised, turned into 22-bit fixed point; a horizontal pass rounding to u8,
/// then a vertical one. So the reference's `img.resize((224, 224), Image.BICUBIC)` is reproduced to the bit,
/// and a 12 MP photo shrinks about 10× faster than with `image`'s generic (f32, per-pixel) resize.
mod pillow {
    const PRECISION_BITS: u32 = 32 - 8 - 2;

    /// Keys' cubic with a = -0.5 (Catmull-Rom), support 2.
    fn bicubic(x: f64) -> f64 {
        const A: f64 = -0.5;
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * A
        } else {
            0.0
        }
    }

    /// For each output index: the first input index and the fixed-point weights of the inputs it reads.
    struct Taps {
        first: Vec<usize>,
        weights: Vec<Vec<i32>>,
    }

    /// `precompute_coeffs` + `normalize_coeffs_8bpc`: the filter widens with the shrink factor (antialiasing).
    fn taps(in_size: usize, out_size: usize) -> Taps {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = 2.0 * filterscale;
        let ss = 1.0 / filterscale;
        let mut taps = Taps {
            first: Vec::with_capacity(out_size),
            weights: Vec::with_capacity(out_size),
        };
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) truncates toward zero; the clamp at 0 makes that the same as flooring here.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64).max(xmin as i64) as usize;
            let k: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) * ss)).collect();
            let ww: f64 = k.iter().sum();
            let fixed = |w: f64| {
                let w = if ww != 0.0 { w / ww } else { w } * f64::from(1u32 << PRECISION_BITS);
                (if w < 0.0 { w - 0.5 } else { w + 0.5 }) as i32
            };
            taps.first.push(xmin);
            taps.weights.push(k.into_iter().map(fixed).collect());
        }
        taps
    }

    fn clip8(v: i32) -> u8 {
        if v >= 1 << PRECISION_BITS << 8 {
            255
        } else if v <= 0 {
            0
        } else {
            (v >> PRECISION_BITS) as u8
        }
    }

    /// The `side`×`side` square at `origin` of an RGB buffer `width` pixels wide → `out`×`out` RGB.
    pub fn resize_square(rgb: &[u8], width: usize, origin: (usize, usize), side: usize, out: usize) -> Vec<u8> {
        let (left, top) = origin;
        if side == out {
            // Pillow returns a copy when the size does not change.
            return (top..top + side)
                .flat_map(|y| &rgb[(y * width + left) * 3..(y * width + left + side) * 3])
                .copied()
                .collect();
        }
        let taps = taps(side, out);
        let half = 1i32 << (PRECISION_BITS - 1);
        // Horizontal pass: every row of the square, `out` pixels wide, rounded to u8 (as Pillow does).
        let mut rows = vec![0u8; side * out * 3];
        for (y, out_row) in rows.chunks_exact_mut(out * 3).enumerate() {
            let start = ((top + y) * width + left) * 3;
            let row = &rgb[start..start + side * 3];
            for ((first, weights), px) in taps.first.iter().zip(&taps.weights).zip(out_row.chunks_exact_mut(3)) {
                let mut acc = [half; 3];
                for (p, &w) in row[first * 3..].chunks_exact(3).zip(weights) {
                    for c in 0..3 {
                        acc[c] += i32::from(p[c]) * w;
                    }
                }
                for c in 0..3 {
                    px[c] = clip8(acc[c]);
                }
            }
        }
        // Vertical pass, a whole output row at a time (integer sums: the order does not change the result).
        let mut result = vec![0u8; out * out * 3];
        let mut acc = vec![0i32; out * 3];
        for ((first, weights), out_row) in taps
            .first
            .iter()
            .zip(&taps.weights)
            .zip(result.chunks_exact_mut(out * 3))
        {
            acc.fill(half);
            for (y, &w) in weights.iter().enumerate() {
                let row = &rows[(first + y) * out * 3..(first + y + 1) * out * 3];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += i32::from(v) * w;
                }
            }
            for (o, &a) in out_row.iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
        result
    }
}

/// Image file bytes → 224×224×3 RGB bytes (HWC), ready for [`normalize_hwc`].
pub fn prepare_rgb(bytes: &[u8]) -> Result<Vec<u8>, PreprocessError> {
    let rgb = to_rgb_over_white(decode(bytes)?);
    Ok(crop_and_resize(&rgb).into_raw())
}

/// 224×224×3 HWC u8 → 3×224×224 CHW f32, `(u8 - 127) / 128` (the reference's normalisation, exactly).
/// A short input leaves the rest of the output at 0.
pub fn normalize_hwc(pixels: &[u8]) -> Vec<f32> {
    let plane = IMAGE_SIZE * IMAGE_SIZE;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in pixels.chunks_exact(3).take(plane).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(px[c]) - 127.0) / 128.0;
        }
    }
    out
}

/// A batch of HWC images → one NCHW buffer (`images.len()` × 3×224×224).
pub fn normalize_batch(images: &[&[u8]]) -> Vec<f32> {
    let mut out = Vec::with_capacity(images.len() * 3 * IMAGE_SIZE * IMAGE_SIZE);
    for image in images {
        out.extend(normalize_hwc(image));
    }
    out
}

/// A `size`×`size` RGBA thumbnail of a prepared 224×224 image, for the UI (opaque; grey if `pixels` is not
/// 224×224×3).
pub fn thumbnail_rgba(pixels: &[u8], size: usize) -> Vec<u8> {
    let Some(rgb) = RgbImage::from_raw(IMAGE_SIZE as u32, IMAGE_SIZE as u32, pixels.to_vec()) else {
        return [128, 128, 128, 255].repeat(size * size);
    };
    let small = image::imageops::resize(&rgb, size as u32, size as u32, FilterType::Triangle);
    DynamicImage::ImageRgb8(small).into_rgba8().into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    fn png(image: DynamicImage) -> Vec<u8> {
        encode(image, ImageFormat::Png)
    }

    /// A real photo (JPEG, q95, 512 px) from the sample dataset.
    fn photo() -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/sample/tool");
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        std::fs::read(
            names
                .iter()
                .find(|p| p.extension().is_some_and(|e| e == "jpg"))
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn chelsea_normalises_to_the_golden_input_exactly() {
        // The reference's decoded bytes (NHWC u8; chelsea is index 2) and its input, (u8 - 127) / 128 in NCHW.
        let golden = read("golden_shipped.safetensors");
        let file = safetensors::SafeTensors::deserialize(&golden).unwrap();
        let plane = IMAGE_SIZE * IMAGE_SIZE;
        let reference = &file.tensor("input_u8_hwc").unwrap().data()[2 * 3 * plane..3 * 3 * plane];
        let decoded = image::load_from_memory(&read("golden/chelsea_cat.png"))
            .unwrap()
            .into_rgb8();
        assert_eq!(decoded.dimensions(), (224, 224));
        assert_eq!(decoded.as_raw(), reference, "chelsea decodes to the reference's bytes");
        let x = normalize_hwc(decoded.as_raw());
        let input: Vec<f32> = (0..3 * plane)
            .map(|i| (reference[i % plane * 3 + i / plane] as f32 - 127.0) / 128.0)
            .collect();
        assert!(x == input, "chelsea (index 2) differs from the golden input");
        // prepare_rgb passes a 224×224 image through untouched.
        assert_eq!(
            prepare_rgb(&read("golden/chelsea_cat.png")).unwrap(),
            decoded.into_raw()
        );
        assert_eq!(
            normalize_batch(&[&[0u8; 224 * 224 * 3][..], &[255u8; 224 * 224 * 3][..]]).len(),
            2 * 3 * plane
        );
    }

    #[test]
    fn the_resampler_shrinks_and_enlarges_smoothly() {
        // A constant image stays constant at any size (weights sum to one in fixed point).
        for side in [1, 2, 3, 100, 225, 1000] {
            let grey = vec![77u8; side * side * 3];
            assert!(
                pillow::resize_square(&grey, side, (0, 0), side, 224)
                    .iter()
                    .all(|&v| v == 77),
                "{side}"
            );
        }
        // The crop is read in place: a square at an offset of a wider buffer.
        let wide: Vec<u8> = (0..300 * 100)
            .flat_map(|i| if i % 300 < 100 { [0u8; 3] } else { [200; 3] })
            .collect();
        let out = pillow::resize_square(&wide, 300, (100, 0), 100, 224);
        assert!(out.iter().all(|&v| v == 200), "only the centre (all 200) is read");
    }

    #[test]
    fn alpha_is_composited_over_white() {
        let img = image::RgbaImage::from_fn(300, 300, |x, _| match x {
            0..100 => image::Rgba([0, 0, 0, 0]),
            100..200 => image::Rgba([0, 0, 0, 128]),
            _ => image::Rgba([10, 20, 30, 255]),
        });
        let rgb = prepare_rgb(&png(DynamicImage::ImageRgba8(img))).unwrap();
        assert_eq!(rgb.len(), IMAGE_SIZE * IMAGE_SIZE * 3);
        assert_eq!(&rgb[..3], &[255, 255, 255], "transparent → white");
        let mid = (112 * IMAGE_SIZE + 112) * 3;
        assert_eq!(
            &rgb[mid..mid + 3],
            &[127, 127, 127],
            "half-transparent black → mid grey"
        );
        assert_eq!(&rgb[rgb.len() - 3..], &[10, 20, 30], "opaque unchanged");
    }

    #[test]
    fn a_one_pixel_image_and_a_wide_one_work() {
        let one = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
            1,
            1,
            image::Rgb([9, 8, 7]),
        )));
        assert!(prepare_rgb(&one).unwrap().chunks(3).all(|p| p == [9, 8, 7]));
        let wide = png(DynamicImage::ImageRgb8(RgbImage::from_fn(400, 100, |x, _| {
            image::Rgb([(x / 2) as u8, 0, 0])
        })));
        // The centre crop keeps columns 150..250: the middle stays ~100 red.
        let rgb = prepare_rgb(&wide).unwrap();
        let mid = (112 * IMAGE_SIZE + 112) * 3;
        assert!(rgb[mid].abs_diff(100) <= 1, "{}", rgb[mid]);
        // A side over 4096 is fine: only the pixel count is limited.
        let long = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
            6000,
            2,
            image::Rgb([5, 6, 7]),
        )));
        assert!(prepare_rgb(&long).unwrap().chunks(3).all(|p| p == [5, 6, 7]));
        // Grey, 16-bit and palette inputs all come out as 224×224 RGB.
        let grey16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(30, 20, image::Luma([65535u16])));
        assert!(prepare_rgb(&png(grey16)).unwrap().iter().all(|&v| v == 255));
        let gif = encode(
            DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(5, 5, image::Rgba([1, 2, 3, 255]))),
            ImageFormat::Gif,
        );
        assert_eq!(&prepare_rgb(&gif).unwrap()[..3], &[1, 2, 3]);
    }

    #[test]
    fn truncated_jpeg_is_an_error() {
        let jpg = photo();
        assert!(prepare_rgb(&jpg).is_ok());
        for cut in [jpg.len() / 3, jpg.len() - 2, 600] {
            assert!(
                matches!(prepare_rgb(&jpg[..cut]), Err(PreprocessError::Corrupt(_))),
                "cut at {cut}: {:?}",
                prepare_rgb(&jpg[..cut]).map(|_| ())
            );
        }
        // Bytes after the end marker (camera trailers) are fine.
        let mut trailer = jpg.clone();
        trailer.extend(std::iter::repeat_n(0x55, 20_000));
        assert!(prepare_rgb(&trailer).is_ok());
        // An end marker inside an APP segment (an EXIF thumbnail) does not hide a cut-off main image.
        let mut thumb = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9];
        thumb.extend(&jpg[2..jpg.len() / 2]);
        assert!(matches!(prepare_rgb(&thumb), Err(PreprocessError::Corrupt(_))));
        // A truncated PNG is refused by its decoder.
        let full = png(DynamicImage::ImageRgb8(RgbImage::from_fn(50, 50, |x, y| {
            image::Rgb([x as u8, y as u8, 3])
        })));
        assert!(matches!(
            prepare_rgb(&full[..full.len() / 2]),
            Err(PreprocessError::Corrupt(_))
        ));
    }

    #[test]
    fn random_bytes_and_other_formats_are_unsupported() {
        let random: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(prepare_rgb(&random), Err(PreprocessError::Unsupported));
        assert_eq!(prepare_rgb(b""), Err(PreprocessError::Unsupported));
        let message = prepare_rgb(b"hello").unwrap_err().to_string();
        assert!(message.contains("JPEG, PNG, GIF, WebP or BMP"), "{message}");
        assert_eq!(
            prepare_rgb(b"II*\0\x08\0\0\0rest"),
            Err(PreprocessError::UnsupportedFormat("TIFF".into()))
        );
        assert_eq!(
            prepare_rgb(b"\0\0\0\x18ftypheic\0\0\0\0"),
            Err(PreprocessError::UnsupportedFormat("HEIC".into()))
        );
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 40×20 JPEG, left half black, right half white, tagged "rotate 90° clockwise" (EXIF orientation 6):
        // shown 20×40 with black on top.
        let img = RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                image::Rgb([0; 3])
            } else {
                image::Rgb([255; 3])
            }
        });
        let jpg = encode(DynamicImage::ImageRgb8(img), ImageFormat::Jpeg);
        let tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let mut tagged = vec![0xFF, 0xD8, 0xFF, 0xE1];
        tagged.extend(((app1.len() + 2) as u16).to_be_bytes());
        tagged.extend(app1);
        tagged.extend(&jpg[2..]);
        let image = decode(&tagged).unwrap();
        assert_eq!(image.dimensions(), (20, 40));
        let rgb = image.into_rgb8();
        assert!(rgb.get_pixel(10, 5)[0] < 30 && rgb.get_pixel(10, 35)[0] > 225);
    }

    #[test]
    fn huge_declared_size_is_refused_from_the_header() {
        // A BMP header claiming 20000×20000 pixels (1.2 GB decoded) and no data.
        let mut bmp = b"BM".to_vec();
        bmp.extend(0u32.to_le_bytes());
        bmp.extend([0; 4]);
        bmp.extend(54u32.to_le_bytes());
        bmp.extend(40u32.to_le_bytes());
        bmp.extend(20_000i32.to_le_bytes());
        bmp.extend(20_000i32.to_le_bytes());
        bmp.extend(1u16.to_le_bytes());
        bmp.extend(24u16.to_le_bytes());
        bmp.extend([0; 24]);
        let error = prepare_rgb(&bmp).unwrap_err();
        assert_eq!(
            error,
            PreprocessError::TooLarge {
                width: 20_000,
                height: 20_000
            }
        );
        assert!(error.to_string().contains("50 megapixels"), "{error}");
    }

    #[test]
    fn normalisation_matches_the_reference_formula() {
        let pixels: Vec<u8> = (0..IMAGE_SIZE * IMAGE_SIZE * 3).map(|i| (i % 256) as u8).collect();
        let x = normalize_hwc(&pixels);
        let plane = IMAGE_SIZE * IMAGE_SIZE;
        assert_eq!(x[0], (0.0 - 127.0) / 128.0);
        assert_eq!(x[plane], (1.0 - 127.0) / 128.0, "channel 1 of pixel 0");
        assert_eq!(x[1], (3.0 - 127.0) / 128.0, "channel 0 of pixel 1");
        let thumb = thumbnail_rgba(&pixels, 8);
        assert_eq!(thumb.len(), 8 * 8 * 4);
        assert!(thumb.chunks(4).all(|p| p[3] == 255));
        assert_eq!(thumbnail_rgba(&[1, 2, 3], 4).len(), 4 * 4 * 4);
    }
}
