//! Image bytes → the model's input, exactly as the reference prepared its data (shared/model/README.md):
//! 8-bit RGB with alpha composited over white, centre square crop, resize to 224×224 (bicubic, antialiased
//! when shrinking), then `(u8 - 127) / 128` in NCHW.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

pub const IMAGE_SIZE: usize = 224;
/// Larger images are refused before decoding (a 40-megapixel photo decodes to 160 MB of RGBA).
pub const MAX_SOURCE_PIXELS: u64 = 40_000_000;
/// Longest side accepted (also bounds decoder allocations for formats with huge declared sizes).
pub const MAX_SIDE: u32 = 16_384;
pub const SUPPORTED: &str = "JPEG, PNG, GIF, WebP or BMP";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("not a supported image format (use {SUPPORTED})")]
    Unsupported,
    #[error("{0} images are not supported (use {SUPPORTED})")]
    UnsupportedFormat(String),
    #[error("image too large: {width}×{height} pixels (the limit is {} megapixels)", MAX_SOURCE_PIXELS / 1_000_000)]
    TooLarge { width: u32, height: u32 },
    #[error("the image has no pixels ({width}×{height})")]
    Empty { width: u32, height: u32 },
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, PreprocessError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PreprocessError::Corrupt(e.to_string()))?;
    match reader.format() {
        None => Err(PreprocessError::Unsupported),
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP | ImageFormat::Bmp) => {
            Ok(reader)
        }
        Some(other) => Err(PreprocessError::UnsupportedFormat(format!("{other:?}").to_uppercase())),
    }
}

/// A JPEG cut short still decodes (the decoder fills the rest with grey), so look for its end-of-image marker
/// near the end of the file. (An early EOI may belong to an EXIF thumbnail, hence "near the end".)
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let tail = bytes.len().saturating_sub(4096.max(bytes.len() / 100));
    !bytes[tail..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes with size checks first: the header's dimensions are read before any pixel buffer is allocated.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, PreprocessError> {
    let format = reader(bytes)?.format();
    let (width, height) = reader(bytes)?
        .into_dimensions()
        .map_err(|e| PreprocessError::Corrupt(e.to_string()))?;
    if format == Some(ImageFormat::Jpeg) && jpeg_is_truncated(bytes) {
        return Err(PreprocessError::Corrupt(
            "the JPEG data ends early (no end-of-image marker)".into(),
        ));
    }
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    if width as u64 * height as u64 > MAX_SOURCE_PIXELS || width > MAX_SIDE || height > MAX_SIDE {
        return Err(PreprocessError::TooLarge { width, height });
    }
    let mut reader = reader(bytes)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_SOURCE_PIXELS * 4 + (64 << 20));
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        ImageError::Limits(_) => PreprocessError::TooLarge { width, height },
        ImageError::Unsupported(u) => PreprocessError::UnsupportedFormat(u.to_string()),
        other => PreprocessError::Corrupt(other.to_string()),
    })
}

/// RGB with any alpha composited over white (what Pillow's `alpha_composite(white, img)` gives).
pub fn to_rgb_over_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        let blend = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    })
}

/// Centre square crop (the full short side) and resize to 224×224. A 224×224 input passes through untouched.
pub fn crop_and_resize(rgb: &RgbImage) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let side = w.min(h);
    let cropped = image::imageops::crop_imm(rgb, (w - side) / 2, (h - side) / 2, side, side).to_image();
    if side as usize == IMAGE_SIZE {
        return cropped;
    }
    image::imageops::resize(&cropped, IMAGE_SIZE as u32, IMAGE_SIZE as u32, FilterType::CatmullRom)
}

/// Image file bytes → 224×224×3 RGB bytes (HWC), ready for `normalize_hwc`.
pub fn prepare_rgb(bytes: &[u8]) -> Result<Vec<u8>, PreprocessError> {
    let image = decode(bytes)?;
    Ok(crop_and_resize(&to_rgb_over_white(&image)).into_raw())
}

/// 224×224×3 HWC u8 → 3×224×224 CHW f32, `(u8 - 127) / 128`.
pub fn normalize_hwc(pixels: &[u8]) -> Vec<f32> {
    let plane = IMAGE_SIZE * IMAGE_SIZE;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in pixels.chunks_exact(3).take(plane).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 - 127.0) / 128.0;
        }
    }
    out
}

/// A batch of HWC images → one NCHW buffer.
pub fn normalize_batch(images: &[&[u8]]) -> Vec<f32> {
    images.iter().flat_map(|img| normalize_hwc(img)).collect()
}

/// A small RGBA thumbnail of a prepared 224×224 image, for the UI.
pub fn thumbnail_rgba(pixels: &[u8], size: usize) -> Vec<u8> {
    let Some(rgb) = RgbImage::from_raw(IMAGE_SIZE as u32, IMAGE_SIZE as u32, pixels.to_vec()) else {
        return vec![0; size * size * 4];
    };
    let small = image::imageops::resize(&rgb, size as u32, size as u32, FilterType::Triangle);
    DynamicImage::ImageRgb8(small).to_rgba8().into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(image: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn alpha_is_composited_over_white() {
        let img = image::RgbaImage::from_fn(300, 300, |x, _| {
            if x < 150 {
                image::Rgba([0, 0, 0, 0])
            } else {
                image::Rgba([10, 20, 30, 255])
            }
        });
        let rgb = prepare_rgb(&png(DynamicImage::ImageRgba8(img))).unwrap();
        assert_eq!(rgb.len(), IMAGE_SIZE * IMAGE_SIZE * 3);
        assert_eq!(&rgb[..3], &[255, 255, 255], "transparent → white");
        let last = rgb.len() - 3;
        assert_eq!(&rgb[last..], &[10, 20, 30]);
    }

    #[test]
    fn tiny_and_non_square_images_work() {
        let one = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
            1,
            1,
            image::Rgb([9, 8, 7]),
        )));
        assert!(prepare_rgb(&one).unwrap().chunks(3).all(|p| p == [9, 8, 7]));
        let wide = png(DynamicImage::ImageRgb8(RgbImage::from_fn(400, 100, |x, _| {
            image::Rgb([(x / 2) as u8, 0, 0])
        })));
        // Centre crop keeps columns 150..250: the middle stays ~100 red.
        let rgb = prepare_rgb(&wide).unwrap();
        let mid = (112 * IMAGE_SIZE + 112) * 3;
        assert!((rgb[mid] as i32 - 100).abs() <= 1, "{}", rgb[mid]);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(
            prepare_rgb(b"definitely not an image"),
            Err(PreprocessError::Unsupported)
        );
        assert!(matches!(prepare_rgb(&[]), Err(PreprocessError::Unsupported)));
        let full = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
            50,
            50,
            image::Rgb([1, 2, 3]),
        )));
        assert!(matches!(
            prepare_rgb(&full[..full.len() / 2]),
            Err(PreprocessError::Corrupt(_))
        ));
        let tiff_magic = b"II*\0\x08\0\0\0rest";
        assert!(matches!(
            prepare_rgb(tiff_magic),
            Err(PreprocessError::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn normalisation_matches_the_reference_formula() {
        let pixels: Vec<u8> = (0..IMAGE_SIZE * IMAGE_SIZE * 3).map(|i| (i % 256) as u8).collect();
        let x = normalize_hwc(&pixels);
        let plane = IMAGE_SIZE * IMAGE_SIZE;
        assert_eq!(x[0], (0.0 - 127.0) / 128.0);
        assert_eq!(x[plane], (1.0 - 127.0) / 128.0, "channel 1 of pixel 0");
        assert_eq!(x[1], (3.0 - 127.0) / 128.0, "channel 0 of pixel 1");
        assert_eq!(thumbnail_rgba(&pixels, 8).len(), 8 * 8 * 4);
    }
}
