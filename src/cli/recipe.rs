//! `ajuste export-recipe PROJECT --out DIR` (issue 27, part 3): the project's training as a PyTorch recipe for
//! a cluster. DIR gets the script (`scripts/recipe/`: `train.py` and its two modules, pinned requirements, a
//! README), the shipped weights, the project's options as it holds them (`options.json`), its images as class
//! folders (`data/`) and the classes' order (`classes.json`), which the labels and the seeded split depend on.
//!
//! Each image is written as the prepared 224×224 pixels the page trains on (PNG, lossless), not as the file the
//! user gave: the script then trains on exactly those pixels, whatever its image decoders do with a JPEG.

use std::path::{Path, PathBuf};

use ajuste::data::store::encode_image;
use ajuste::project;
use serde_json::json;

/// The recipe's files, as `scripts/recipe/` holds them.
const FILES: [(&str, &str); 5] = [
    ("train.py", include_str!("../../scripts/recipe/train.py")),
    ("ajuste_data.py", include_str!("../../scripts/recipe/ajuste_data.py")),
    ("ajuste_model.py", include_str!("../../scripts/recipe/ajuste_model.py")),
    (
        "requirements.txt",
        include_str!("../../scripts/recipe/requirements.txt"),
    ),
    ("README.md", include_str!("../../scripts/recipe/README.md")),
];

#[derive(clap::Args)]
pub struct RecipeArgs {
    /// A .ajuste project, saved by the page or written by `ajuste train`.
    project: PathBuf,
    /// Where the recipe goes: a new or empty folder.
    #[arg(long)]
    out: PathBuf,
}

pub fn export_recipe(args: RecipeArgs) -> Result<(), String> {
    let name = args.project.display().to_string();
    if !name.to_lowercase().ends_with(&format!(".{}", project::EXTENSION)) {
        return Err(format!(
            "{name}: not a .{} project (the page's Save project, or the project.{} `ajuste train` writes)",
            project::EXTENSION,
            project::EXTENSION
        ));
    }
    let bytes = std::fs::read(&args.project).map_err(|e| format!("{name}: cannot be read ({e})"))?;
    let project = project::read(&bytes).map_err(|e| format!("{name}: {e}"))?;
    project
        .dataset
        .check_trainable()
        .map_err(|problems| format!("{name}: {}", problems.join(" ")))?;
    let out = &args.out;
    // Images of another project left in `data/` would be trained on too.
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!("{}: not empty; give a new or empty folder", out.display()));
    }
    let write = |path: &Path, bytes: &[u8]| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: cannot be made ({e})", parent.display()))?;
        }
        std::fs::write(path, bytes).map_err(|e| format!("{}: cannot be written ({e})", path.display()))
    };
    for (file, text) in FILES {
        write(&out.join(file), text.as_bytes())?;
    }
    write(&out.join("efficientnet_lite0.safetensors"), super::WEIGHTS)?;
    let options = serde_json::to_string_pretty(&project.options).map_err(|e| e.to_string())?;
    write(&out.join("options.json"), format!("{options}\n").as_bytes())?;

    let mut classes = Vec::new();
    let mut folders: Vec<String> = Vec::new();
    let mut images = 0;
    for class in &project.dataset.classes {
        let mut folder = folder_name(&class.name);
        for n in 2.. {
            if !folders.iter().any(|f| f.eq_ignore_ascii_case(&folder)) {
                break;
            }
            folder = format!("{}-{n}", folder_name(&class.name));
        }
        // Zero-padded so that the script's sorted listing is the project's order, which the split follows.
        let width = class.samples.len().to_string().len().max(4);
        for (n, sample) in class.samples.iter().enumerate() {
            let png = encode_image(&sample.pixels).map_err(|e| format!("{}: {e}", sample.name))?;
            let stem = sample
                .name
                .rsplit_once('.')
                .map_or(sample.name.as_str(), |(stem, _)| stem);
            let stem: String = file_part(stem).chars().take(80).collect();
            let file = format!("{n:0width$}-{stem}.png");
            write(&out.join("data").join(&folder).join(file), &png)?;
        }
        images += class.samples.len();
        classes.push(json!({ "name": class.name, "folder": folder }));
        folders.push(folder);
    }
    let listing = serde_json::to_string_pretty(&classes).map_err(|e| e.to_string())?;
    write(&out.join("classes.json"), format!("{listing}\n").as_bytes())?;
    eprintln!(
        "Wrote the recipe for {images} images in {} classes (mode {}) to {}: see its README.md, then\n  \
         cd {} && pip install -r requirements.txt && torchrun --nproc_per_node 1 train.py",
        classes.len(),
        project.options.finetune.name(),
        out.display(),
        out.display()
    );
    Ok(())
}

/// A class name as a folder name on any system: path separators and characters Windows refuses become `_`, and
/// a leading dot (a hidden folder, which the page and the script skip) gets a `_` before it.
fn folder_name(class: &str) -> String {
    let name = file_part(class);
    if name.starts_with('.') {
        format!("_{name}")
    } else {
        name
    }
}

fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}
