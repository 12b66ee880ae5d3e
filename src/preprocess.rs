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
    #[error("the {0} format is not supported: convert it to JPEG or PNG (read here: {SUPPORTED})")]
    UnsupportedFormat(String),
    #[error(
        "the image is too large: {width}×{height} pixels (the limit is {} megapixels)",
        MAX_SOURCE_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image has no pixels ({width}×{height})")]
    Empty { width: u32, height: u32 },
    /// The decoder's own words are kept, after the plain reason.
    #[error("damaged image data: the file is corrupt or truncated (decoder: {0})")]
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

/// The size a header declares, read without limits (no pixel buffer is made).
fn header_dimensions(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits();
    reader.into_decoder().ok().map(|d| d.dimensions())
}

/// The size a PNG, BMP or GIF header declares, read from its bytes. Needed in wasm32, where the decoders refuse
/// an image whose buffer would not fit a 32-bit `usize` before telling its size.
fn declared_dimensions(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let le32 = |at: usize| Some(i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?).unsigned_abs());
    let le16 = |at: usize| Some(u32::from(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?)));
    match format {
        ImageFormat::Png if bytes.get(12..16) == Some(b"IHDR") => Some((be(16)?, be(20)?)),
        ImageFormat::Bmp if le32(14)? == 12 => Some((le16(18)?, le16(20)?)),
        ImageFormat::Bmp => Some((le32(18)?, le32(22)?)),
        ImageFormat::Gif => Some((le16(6)?, le16(8)?)),
        _ => None,
    }
}

/// Decodes with the size checks first: the header's dimensions are read before any pixel buffer is allocated.
/// The EXIF orientation, if any, is applied.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, PreprocessError> {
    let format = sniff(bytes)?;
    if let Some((width, height)) = declared_dimensions(bytes, format)
        && u64::from(width) * u64::from(height) > MAX_SOURCE_PIXELS
    {
        return Err(PreprocessError::TooLarge { width, height });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    // Header only: a truncated or garbled header fails here, before the size is known. A decoder that checks
    // the limits while reading the header (PNG) fails before telling the size: read it again without limits,
    // headers only, so the message gives the real size.
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        ImageError::Limits(_) => {
            let (width, height) = header_dimensions(bytes, format).unwrap_or((0, 0));
            PreprocessError::TooLarge { width, height }
        }
        other => decoding_error(other, 0, 0),
    })?;
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

/// Pillow's antialiased bicubic resampling, bit-exact (see the module).
mod pillow;

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
mod tests;
