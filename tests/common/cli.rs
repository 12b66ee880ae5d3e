//! The native command's test helpers: running `ajuste`, a tiny folder of two classes with a damaged file, a
//! scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{ImageFormat, RgbImage};

pub const BIN: &str = env!("CARGO_BIN_EXE_ajuste");

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("the command runs")
}

/// `ajuste train DATA --mode head --epochs N --out OUT`: a quick head-only training.
pub fn train_head(data: &Path, epochs: usize, out: &Path) -> Output {
    let epochs = epochs.to_string();
    run(&[
        "train",
        data.to_str().unwrap(),
        "--mode",
        "head",
        "--epochs",
        &epochs,
        "--out",
        out.to_str().unwrap(),
    ])
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `root/shapes/{red,blue}/{0..4}.png`: four distinct images a class, and a damaged `red/broken.png`.
pub fn folder(root: &Path) -> PathBuf {
    let data = root.join("shapes");
    for (class, rgb) in [("red", [200u8, 30, 30]), ("blue", [30u8, 40, 210])] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..4u32 {
            let img = RgbImage::from_fn(64, 48, |x, y| {
                let shade = ((x * (i + 1) + y * 3) % 40) as u8;
                image::Rgb(rgb.map(|c| c.saturating_add(shade)))
            });
            img.save_with_format(data.join(class).join(format!("{i}.png")), ImageFormat::Png)
                .unwrap();
        }
    }
    std::fs::write(data.join("red/broken.png"), b"\x89PNG not really").unwrap();
    data
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ajuste-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
