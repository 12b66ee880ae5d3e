//! The image preparation every snippet hands out (`src/export/snippet.rs`), run in Python with Pillow and numpy,
//! against the page's own (`preprocess::prepare_rgb`): on a photo saved sideways (EXIF orientation 6) and on a
//! half-transparent PNG. And README.md and docs/model.md quote the same lines.

use std::path::PathBuf;
use std::process::Command;

use ajuste::export::snippet::{ONNX_PYTHON, PIL_IMPORT, PREPARE};
use ajuste::floats::{from_le_bytes, max_abs_diff};
use ajuste::model::load_efficientnet;
use ajuste::preprocess::{IMAGE_SIZE, normalize_hwc, prepare_rgb};
use burn::tensor::{Device, Tensor, TensorData};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, RgbaImage};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Stands in for onnxruntime so that the ONNX snippet runs whole, as handed out: it keeps the model's input.
const FAKE_ONNXRUNTIME: &str = r#"import numpy as np

class InferenceSession:
    def __init__(self, path):
        pass

    def run(self, names, feeds):
        x = feeds["input"]
        assert x.dtype == np.float32 and x.shape == (1, 3, 224, 224), (x.dtype, x.shape)
        x.astype("<f4").tofile("input.f32")
        return np.zeros((1, 1), np.float32), np.zeros((1, 1280), np.float32)
"#;

fn read(path: &str) -> Vec<u8> {
    let path = format!("{ROOT}/{path}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A python3 with Pillow and numpy: the first in PATH, else Debian's, where scripts/setup.sh installs them.
fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import PIL, numpy"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("this test needs python3 with Pillow and numpy: run scripts/setup.sh (apt: python3-pil python3-numpy)")
}

/// Runs `snippet` (an ONNX snippet, onnxruntime faked) on `photo` in a fresh folder: the input it gives the model.
fn snippet_input(snippet: &str, photo: &[u8], name: &str) -> Vec<f32> {
    let dir: PathBuf = std::env::temp_dir().join(format!("ajuste-snippet-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("photo.jpg"), photo).unwrap();
    std::fs::write(dir.join("onnxruntime.py"), FAKE_ONNXRUNTIME).unwrap();
    std::fs::write(dir.join("labels.txt"), "0 only\n").unwrap();
    std::fs::write(dir.join("snippet.py"), snippet).unwrap();
    let out = Command::new(python())
        .arg("snippet.py")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "only\n", "{name}");
    let x = from_le_bytes(&std::fs::read(dir.join("input.f32")).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    x
}

/// The page's model input for the same bytes.
fn page_input(photo: &[u8]) -> Vec<f32> {
    normalize_hwc(&prepare_rgb(photo).expect("the page prepares the photo"))
}

/// Big-endian TIFF with one IFD entry, Orientation (0x0112, SHORT) = 6: "turn 90° clockwise to show".
const EXIF_ORIENTATION_6: &[u8] = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

/// The cat of the goldens (451×300, not symmetric) as a phone saves a portrait shot: pixels stored turned a
/// quarter-turn anticlockwise, and EXIF orientation 6, in a JPEG (APP1) or a PNG (eXIf, lossless).
fn sideways(format: ImageFormat) -> Vec<u8> {
    let upright = image::load_from_memory(&read("tests/fixtures/golden/chelsea_cat_original.png")).unwrap();
    let stored = DynamicImage::ImageRgb8(upright.into_rgb8()).rotate270();
    let mut bytes = Vec::new();
    if format == ImageFormat::Jpeg {
        stored
            .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 90))
            .unwrap();
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(EXIF_ORIENTATION_6);
        let mut tagged = vec![0xFF, 0xD8, 0xFF, 0xE1];
        tagged.extend(((app1.len() + 2) as u16).to_be_bytes());
        tagged.extend(app1);
        tagged.extend(&bytes[2..]);
        return tagged;
    }
    stored.write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
    // The eXIf chunk right after IHDR (signature 8 bytes, IHDR 25).
    let mut chunk = (EXIF_ORIENTATION_6.len() as u32).to_be_bytes().to_vec();
    let body = [b"eXIf", EXIF_ORIENTATION_6].concat();
    chunk.extend(&body);
    chunk.extend(crc32fast::hash(&body).to_be_bytes());
    [&bytes[..33], &chunk, &bytes[33..]].concat()
}

fn top1(model: &ajuste::model::EfficientNetLite0, x: &[f32], device: &Device) -> usize {
    let input = Tensor::from_data(TensorData::new(x.to_vec(), [1, 3, IMAGE_SIZE, IMAGE_SIZE]), device);
    let logits = pollster::block_on(model.forward(input).into_data_async())
        .unwrap()
        .try_to_vec::<f32>()
        .unwrap();
    (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap()
}

/// The issue's case: the snippet read a sideways phone photo sideways (another crop of it, turned), so the model
/// answered something else than Try it. With `exif_transpose` the input is the page's: exactly from a PNG; from
/// a JPEG up to the two decoders' rounding (libjpeg-turbo in Pillow, zune-jpeg in `image`: measured 1.4 % of the
/// values 1/128 off, 19 of 150,528 2/128). Without it, far from it.
#[test]
fn the_snippet_prepares_a_sideways_photo_as_the_page_does() {
    let unturned = ONNX_PYTHON.replace(
        r#"ImageOps.exif_transpose(Image.open("photo.jpg"))"#,
        r#"Image.open("photo.jpg")"#,
    );
    assert_ne!(unturned, ONNX_PYTHON);
    let device = Device::flex();
    let model = load_efficientnet(&read("public/models/efficientnet_lite0.safetensors"), &device).unwrap();
    for (format, tolerance) in [(ImageFormat::Png, 0.0), (ImageFormat::Jpeg, 3.0 / 128.0)] {
        let photo = sideways(format);
        let page = page_input(&photo);
        let snippet = snippet_input(ONNX_PYTHON, &photo, "upright");
        let upright = max_abs_diff(&page, &snippet);
        let without = max_abs_diff(&page, &snippet_input(&unturned, &photo, "sideways"));
        let (page_class, snippet_class) = (top1(&model, &page, &device), top1(&model, &snippet, &device));
        println!(
            "{format:?}: max |Δ| from the page's input {upright} with the EXIF orientation, {without} without; \
             ImageNet top-1 page {page_class}, snippet {snippet_class}"
        );
        assert!(upright <= tolerance, "{format:?}: {upright}");
        assert!(without > 0.5, "{format:?}: {without}");
        assert_eq!(page_class, snippet_class, "{format:?}");
    }
}

/// Alpha over white as the page does: transparent pixels hold colours that `convert("RGB")` would keep.
#[test]
fn the_snippet_composites_alpha_over_white_as_the_page_does() {
    let rgba = RgbaImage::from_fn(300, 200, |x, y| {
        image::Rgba([
            (x % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
            ((x * 7 + y) % 256) as u8,
        ])
    });
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(rgba)
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let diff = max_abs_diff(&page_input(&png), &snippet_input(ONNX_PYTHON, &png, "alpha"));
    assert_eq!(
        diff, 0.0,
        "Pillow's alpha_composite and the page's are the same integer arithmetic"
    );
}

/// The Python blocks of the docs that open an image prepare it with the shared lines, verbatim.
#[test]
fn the_docs_quote_the_shared_preparation() {
    for doc in ["docs/exports.md", "docs/model.md"] {
        let text = String::from_utf8(read(doc)).unwrap();
        let blocks: Vec<&str> = text
            .split("```python\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .filter(|block| block.contains("Image.open("))
            .collect();
        assert!(!blocks.is_empty(), "{doc} has no Python block that opens an image");
        for block in blocks {
            assert!(block.contains(PIL_IMPORT) && block.contains(PREPARE), "{doc}:\n{block}");
        }
    }
}
