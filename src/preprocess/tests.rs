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
