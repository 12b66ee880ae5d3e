//! The work behind the UI: model loading, dataset ingest, embedding and head training, export.
//! Browser-bound state (device, model, pixels, trainer) sits in a thread-local `Core`; each flow updates the
//! `Ui` signals as it goes and yields to the browser so the page stays responsive.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ajuste::data::ingest::MAX_FILE_BYTES;
use ajuste::data::zip_archive::MAX_TOTAL_BYTES;
use ajuste::data::{
    Dataset, FileError, IngestReport, InputFile, Placement, plan_folder, snapshot, split::stratified_split,
};
use ajuste::export::{self, ExportMetadata};
use ajuste::model::embed::{embed_and_classify, embed_batch, input_tensor};
use ajuste::model::{EMBEDDING_DIM, EfficientNetLite0, imagenet, load_efficientnet};
use ajuste::preprocess::thumbnail_rgba;
use ajuste::train::{EpochMetrics, Head, NamedTensor, TrainOptions, Trainer, metrics::evaluate};
use burn::tensor::Device;
use leptos::prelude::*;

use super::backend::{self, BackendKind};
use super::browser::{download, now_ms, rgba_data_url, yield_to_browser};
use super::files::PickedFile;
use super::model_fetch::{WEIGHTS_URL, fetch_bytes, fetch_weights};
use super::persist;
use super::state::*;

const THUMBNAILS_PER_CLASS: usize = 4;
const THUMBNAIL_SIZE: usize = 64;

/// A trained head and what is needed to export it.
struct Trained {
    head: Head,
    meta: ExportMetadata,
}

#[derive(Default)]
struct Core {
    dataset: Dataset,
    weights: Option<Rc<Vec<u8>>>,
    model: Option<Rc<EfficientNetLite0>>,
    device: Option<(BackendKind, Device)>,
    /// WebGPU can be initialised once per page; kept for switching back and forth.
    webgpu: Option<Device>,
    /// Embeddings by pixel hash: survive class renames, backend switches and re-training.
    embeddings: HashMap<u64, Vec<f32>>,
    thumbnails: HashMap<u64, String>,
    trained: Option<Trained>,
    stop: bool,
}

thread_local! {
    static CORE: RefCell<Core> = RefCell::new(Core::default());
}

fn with_core<R>(f: impl FnOnce(&mut Core) -> R) -> R {
    CORE.with(|c| f(&mut c.borrow_mut()))
}

/// FNV-1a: a cheap identity for a 224x224 image.
fn pixel_key(pixels: &[u8]) -> u64 {
    pixels.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

// ---------------------------------------------------------------- model and backend

/// Probes the adapter, picks the backend, downloads (or reads from cache) the weights and builds the model.
pub async fn start(ui: Ui) {
    // Alongside the model download: reading the saved work must not delay it.
    leptos::task::spawn_local(restore(ui));
    let probe = backend::probe_adapter().await;
    let (kind, reason) = backend::choose(&probe, backend::forced_by_url());
    ui.backend.set(Some(BackendView {
        kind,
        reason,
        adapter: if probe.available {
            probe.description.clone()
        } else {
            "none".into()
        },
        webgpu_available: probe.available,
    }));
    let started = now_ms();
    let fetched = fetch_weights(move |loaded, total| ui.model.set(ModelStatus::Downloading { loaded, total })).await;
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => return ui.model.set(ModelStatus::Failed(e)),
    };
    let megabytes = fetched.bytes.len() as f64 / 1e6;
    with_core(|c| c.weights = Some(Rc::new(fetched.bytes)));
    ui.model.set(ModelStatus::Building);
    yield_to_browser().await;
    match use_backend(kind).await {
        Ok(()) => ui.model.set(ModelStatus::Ready {
            from_cache: fetched.from_cache,
            megabytes,
            load_ms: now_ms() - started,
        }),
        Err(e) => ui.model.set(ModelStatus::Failed(e)),
    }
}

/// (Re)builds the model on `kind`'s device from the downloaded weights.
pub async fn use_backend(kind: BackendKind) -> Result<(), String> {
    let device = match (kind, with_core(|c| c.webgpu.clone())) {
        (BackendKind::WebGpu, Some(device)) => device,
        _ => {
            let device = backend::init_device(kind).await?;
            if kind == BackendKind::WebGpu {
                with_core(|c| c.webgpu = Some(device.clone()));
            }
            device
        }
    };
    let weights = with_core(|c| c.weights.clone()).ok_or("the model weights are not loaded yet")?;
    let model = load_efficientnet(&weights, &device).map_err(|e| format!("{WEIGHTS_URL}: {e}"))?;
    with_core(|c| {
        c.model = Some(Rc::new(model));
        c.device = Some((kind, device));
    });
    Ok(())
}

pub async fn switch_backend(ui: Ui, kind: BackendKind) {
    if ui.backend.with_untracked(|b| b.as_ref().map(|b| b.kind)) == Some(kind) {
        return;
    }
    ui.model.set(ModelStatus::Building);
    let started = now_ms();
    match use_backend(kind).await {
        Ok(()) => {
            ui.backend.update(|b| {
                if let Some(b) = b {
                    b.kind = kind;
                    b.reason = "chosen by you".into();
                }
            });
            let megabytes = with_core(|c| c.weights.as_ref().map_or(0.0, |w| w.len() as f64 / 1e6));
            ui.model.set(ModelStatus::Ready {
                from_cache: true,
                megabytes,
                load_ms: now_ms() - started,
            });
        }
        Err(e) => ui
            .notice
            .set(Some(format!("Could not switch to {}: {e}", kind.label()))),
    }
}

// ---------------------------------------------------------------- dataset

fn refresh_classes(ui: Ui) {
    let views = with_core(|c| {
        let Core {
            dataset, thumbnails, ..
        } = c;
        dataset
            .classes
            .iter()
            .map(|class| ClassView {
                name: class.name.clone(),
                count: class.samples.len(),
                thumbnails: class
                    .samples
                    .iter()
                    .take(THUMBNAILS_PER_CLASS)
                    .filter_map(|s| {
                        let key = pixel_key(&s.pixels);
                        if let Some(url) = thumbnails.get(&key) {
                            return Some(url.clone());
                        }
                        let rgba = thumbnail_rgba(&s.pixels, THUMBNAIL_SIZE);
                        let url = rgba_data_url(&rgba, THUMBNAIL_SIZE as u32, THUMBNAIL_SIZE as u32).ok()?;
                        thumbnails.insert(key, url.clone());
                        Some(url)
                    })
                    .collect(),
            })
            .collect()
    });
    ui.classes.set(views);
}

fn report(ui: Ui, report: IngestReport, source: &str) {
    let mut views: Vec<FileErrorView> = report
        .errors
        .iter()
        .map(|e| FileErrorView {
            file: e.file.clone(),
            problem: e.problem.clone(),
            warning: false,
        })
        .collect();
    views.extend(report.warnings.iter().map(|e| FileErrorView {
        file: e.file.clone(),
        problem: e.problem.clone(),
        warning: true,
    }));
    let rejected = report.errors.len();
    ui.notice.set(Some(match (report.added, rejected) {
        (0, 0) => format!("{source}: no images found."),
        (added, 0) => format!("{source}: added {added} image{}.", if added == 1 { "" } else { "s" }),
        (added, rejected) => format!("{source}: added {added}, rejected {rejected} (see below)."),
    }));
    ui.file_errors.set(views);
    // A changed dataset makes the last trained head stale for export of new labels; keep it until retrained.
    refresh_classes(ui);
    save_dataset(ui);
}

/// Where loose files go.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Sub-folders are classes (a dropped or picked folder).
    Folders,
    /// Loose images into this class (created if new).
    Class(String),
}

/// Reads picked files (zips are unpacked in Rust) and adds them one by one, yielding so the progress bar
/// moves; nothing already loaded is lost on error.
pub async fn ingest(ui: Ui, mut picked: Vec<PickedFile>, problems: Vec<String>, target: Target, source: String) {
    // Sorted, new classes come out in alphabetical order whatever order the browser listed the files in.
    picked.sort_by(|a, b| a.path.cmp(&b.path));
    let total = picked.len();
    ui.phase.set(Phase::Loading { done: 0, total });
    let mut merged = IngestReport::default();
    for problem in problems {
        let (file, why) = problem.split_once(": ").unwrap_or((&problem, "could not be read"));
        merged.errors.push(FileError::new(file, why));
    }
    // Where each file goes is decided on the whole drop (its root folder is recognised from all paths).
    let plan: Vec<Placement> = match &target {
        Target::Folders => {
            let paths: Vec<&str> = picked.iter().map(|p| p.path.as_str()).collect();
            let (plan, report) = plan_folder(&paths);
            merge(&mut merged, report);
            plan
        }
        Target::Class(class) => picked
            .iter()
            .map(|p| Placement::Class {
                class: class.clone(),
                name: p.file.name(),
            })
            .collect(),
    };
    for (i, (file, placement)) in picked.into_iter().zip(plan).enumerate() {
        ui.phase.set(Phase::Loading { done: i, total });
        if matches!(placement, Placement::Skip | Placement::Refused(_)) {
            let r = with_core(|c| {
                c.dataset.add_planned(
                    &placement,
                    &InputFile {
                        path: file.path,
                        bytes: Vec::new(),
                    },
                )
            });
            merge(&mut merged, r);
            continue;
        }
        // Refuse oversized files before reading them into memory.
        let limit = if placement == Placement::Zip {
            MAX_TOTAL_BYTES as f64
        } else {
            MAX_FILE_BYTES as f64
        };
        let size = super::files::size_of(&file.file);
        if size > limit {
            merged.errors.push(FileError::new(
                file.path,
                format!("the file is too large ({:.0} MB)", size / 1e6),
            ));
            continue;
        }
        let name = file.path.clone();
        match super::files::read_file(file).await {
            Ok(input) => {
                let r = with_core(|c| c.dataset.add_planned(&placement, &input));
                merge(&mut merged, r);
            }
            Err(e) => merged.errors.push(FileError::new(name, e)),
        }
        // Each decode takes a few milliseconds: yield now and then so the page repaints.
        if i % 4 == 3 {
            yield_to_browser().await;
        }
    }
    ui.phase.set(Phase::Idle);
    report(ui, merged, &source);
}

fn merge(into: &mut IngestReport, from: IngestReport) {
    into.added += from.added;
    into.errors.extend(from.errors);
    into.warnings.extend(from.warnings);
}

/// Loads the bundled sample (public/sample/index.json lists its files).
pub async fn load_sample(ui: Ui) {
    let index = match fetch_bytes("sample/index.json").await {
        Ok(bytes) => bytes,
        Err(e) => return ui.notice.set(Some(format!("Could not load the sample: {e}"))),
    };
    #[derive(serde::Deserialize)]
    struct Index {
        classes: std::collections::BTreeMap<String, Vec<String>>,
    }
    let index: Index = match serde_json::from_slice(&index) {
        Ok(i) => i,
        Err(e) => return ui.notice.set(Some(format!("sample/index.json: {e}"))),
    };
    let paths: Vec<String> = index.classes.values().flatten().cloned().collect();
    let total = paths.len();
    let mut files = Vec::new();
    let mut merged = IngestReport::default();
    for (i, path) in paths.into_iter().enumerate() {
        ui.phase.set(Phase::Loading { done: i, total });
        match fetch_bytes(&format!("sample/{path}")).await {
            Ok(bytes) => files.push(InputFile {
                path: format!("sample/{path}"),
                bytes,
            }),
            Err(e) => merged.errors.push(FileError::new(path, e)),
        }
    }
    for chunk in files.chunks(8) {
        let r = with_core(|c| c.dataset.add_folder_files(chunk.to_vec()));
        merge(&mut merged, r);
        yield_to_browser().await;
    }
    ui.phase.set(Phase::Idle);
    report(ui, merged, "Sample dataset");
}

pub fn rename_class(ui: Ui, index: usize, name: String) {
    match with_core(|c| c.dataset.rename_class(index, &name)) {
        Ok(()) => ui.notice.set(Some(format!("Renamed class to “{}”.", name.trim()))),
        Err(e) => ui.notice.set(Some(format!("Cannot rename: {e}"))),
    }
    refresh_classes(ui);
    save_dataset(ui);
}

pub fn remove_class(ui: Ui, index: usize) {
    let name = with_core(|c| {
        let name = c.dataset.classes.get(index).map(|c| c.name.clone());
        c.dataset.remove_class(index);
        name
    });
    if let Some(name) = name {
        ui.notice.set(Some(format!("Removed class “{name}”.")));
    }
    refresh_classes(ui);
    save_dataset(ui);
}

pub fn clear_dataset(ui: Ui) {
    with_core(|c| c.dataset = Dataset::default());
    ui.file_errors.set(Vec::new());
    ui.notice.set(Some("Dataset cleared.".into()));
    refresh_classes(ui);
    save_dataset(ui);
}

/// ImageNet top-5 of one image with the pretrained 1000-class head: what the backbone recognises before any
/// fine-tuning. Computed on the CPU from read-back logits (WebGPU has no top-k).
pub async fn show_imagenet(ui: Ui, class: usize, sample: usize) {
    let found = with_core(|c| {
        let s = c.dataset.classes.get(class)?.samples.get(sample)?;
        Some((
            s.name.clone(),
            s.pixels.clone(),
            c.model.clone()?,
            c.device.as_ref()?.1.clone(),
        ))
    });
    let Some((name, pixels, model, device)) = found else {
        return;
    };
    if model.num_classes() != ajuste::model::IMAGENET_CLASSES {
        return;
    }
    match embed_and_classify(&model, input_tensor(&[&pixels], &device)).await {
        Ok((_, logits)) => {
            let top = imagenet::top_k(&logits, 5)
                .into_iter()
                .map(|(i, p)| (imagenet::class_name(i).unwrap_or("?").to_string(), p))
                .collect();
            ui.imagenet.set(Some((name, top)));
        }
        Err(e) => ui.notice.set(Some(format!("Could not classify {name}: {e}"))),
    }
}

// ---------------------------------------------------------------- training

pub fn request_stop() {
    with_core(|c| c.stop = true);
}

fn fail(ui: Ui, message: String) {
    ui.phase.set(Phase::Error(message));
}

/// Embeds every image not embedded yet, then trains the head epoch by epoch, updating the charts.
pub async fn train(ui: Ui) {
    let options = ui.options.get_untracked();
    if let Err(e) = options.validate() {
        return fail(ui, format!("Options: {e}"));
    }
    if let Err(problems) = with_core(|c| c.dataset.check_trainable()) {
        return fail(ui, problems.join(" "));
    }
    let Some((model, device, kind)) =
        with_core(|c| Some((c.model.clone()?, c.device.as_ref()?.1.clone(), c.device.as_ref()?.0)))
    else {
        return fail(ui, "The model is not loaded yet.".into());
    };
    with_core(|c| c.stop = false);
    ui.history.set(Vec::new());
    ui.results.set(None);

    // 1. Embed (once per image: cached by pixel hash).
    let (keys, labels, names): (Vec<u64>, Vec<usize>, Vec<String>) = with_core(|c| {
        let mut keys = Vec::new();
        let mut labels = Vec::new();
        for (label, class) in c.dataset.classes.iter().enumerate() {
            for s in &class.samples {
                keys.push(pixel_key(&s.pixels));
                labels.push(label);
            }
        }
        (keys, labels, c.dataset.classes.iter().map(|c| c.name.clone()).collect())
    });
    let missing: Vec<usize> = with_core(|c| {
        (0..keys.len())
            .filter(|&i| !c.embeddings.contains_key(&keys[i]))
            .collect()
    });
    let batch_size = if kind == BackendKind::WebGpu { 16 } else { 4 };
    let started = now_ms();
    ui.phase.set(Phase::Embedding {
        done: 0,
        total: missing.len(),
        images_per_second: 0.0,
    });
    yield_to_browser().await;
    for (b, chunk) in missing.chunks(batch_size).enumerate() {
        if with_core(|c| c.stop) {
            // Not an error: what was embedded stays cached, so the next Train resumes from there.
            ui.notice.set(Some(format!(
                "Stopped while computing features ({} of {} done).",
                b * batch_size,
                missing.len()
            )));
            ui.phase.set(Phase::Idle);
            return;
        }
        let pixels: Vec<Vec<u8>> = with_core(|c| {
            let all: Vec<&Vec<u8>> = c
                .dataset
                .classes
                .iter()
                .flat_map(|cl| cl.samples.iter().map(|s| &s.pixels))
                .collect();
            chunk.iter().map(|&i| all[i].clone()).collect()
        });
        let refs: Vec<&[u8]> = pixels.iter().map(|p| p.as_slice()).collect();
        let embedded = match embed_batch(&model, &refs, &device).await {
            Ok(e) => e,
            Err(e) => return fail(ui, format!("Embedding failed on {}: {e}", kind.label())),
        };
        with_core(|c| {
            for (j, &i) in chunk.iter().enumerate() {
                c.embeddings
                    .insert(keys[i], embedded[j * EMBEDDING_DIM..(j + 1) * EMBEDDING_DIM].to_vec());
            }
        });
        let done = (b * batch_size + chunk.len()).min(missing.len());
        let seconds = (now_ms() - started) / 1000.0;
        ui.phase.set(Phase::Embedding {
            done,
            total: missing.len(),
            images_per_second: done as f64 / seconds.max(1e-9),
        });
        yield_to_browser().await;
    }
    let embed_seconds = (now_ms() - started) / 1000.0;
    let images_per_second = if missing.is_empty() {
        0.0
    } else {
        missing.len() as f64 / embed_seconds.max(1e-9)
    };

    // 2. Train the head on the cached embeddings.
    let features: Vec<f32> = with_core(|c| keys.iter().flat_map(|k| c.embeddings[k].iter().copied()).collect());
    let split = stratified_split(&labels, options.val_fraction, options.seed);
    let (num_train, num_val) = (split.train.len(), split.val.len());
    let mut trainer = match Trainer::new(
        features.clone(),
        EMBEDDING_DIM,
        labels.clone(),
        split.train.clone(),
        split.val.clone(),
        names.len(),
        options.clone(),
    ) {
        Ok(t) => t,
        Err(e) => return fail(ui, e),
    };
    let train_started = now_ms();
    let mut compute_ms = 0.0;
    while !trainer.is_done() {
        if with_core(|c| c.stop) {
            trainer.request_stop();
            break;
        }
        let t0 = now_ms();
        let metrics = trainer.step_epoch();
        compute_ms += now_ms() - t0;
        ui.phase.set(Phase::Training {
            epoch: metrics.epoch + 1,
            epochs: options.epochs,
        });
        ui.history.update(|h| h.push(metrics));
        yield_to_browser().await;
    }
    let train_seconds = (now_ms() - train_started) / 1000.0;
    web_sys::console::log_1(
        &format!(
            "head training: {:.1} ms compute, {:.1} ms with UI updates",
            compute_ms,
            train_seconds * 1000.0
        )
        .into(),
    );

    // 3. Results on the validation split, with the best epoch's head (the one exported).
    let (head, best) = trainer.best();
    let (head, best) = (head.clone(), best.clone());
    let eval_idx = if split.val.is_empty() { &split.train } else { &split.val };
    let (val_loss, val_accuracy, confusion) = evaluate(&head, &features, &labels, eval_idx);
    let stop_reason = trainer.stop_reason().to_string();
    let k = names.len();
    let results = Results {
        labels: names.clone(),
        confusion: (0..k).map(|r| confusion.counts[r * k..(r + 1) * k].to_vec()).collect(),
        per_class_accuracy: confusion.per_class_accuracy(),
        best_epoch: best.epoch,
        val_accuracy,
        val_loss,
        stop_reason: stop_reason.clone(),
        embed_seconds,
        images_per_second,
        train_seconds,
        num_train,
        num_val,
    };
    let meta = ExportMetadata::new(
        names,
        options,
        &trainer,
        &results.per_class_accuracy,
        num_train,
        num_val,
    );
    let saved = SavedTraining {
        head: head.tensors(),
        meta: meta.clone(),
        history: ui.history.get_untracked(),
        results: results.clone(),
    };
    with_core(|c| c.trained = Some(Trained { head, meta }));
    ui.results.set(Some(results));
    ui.phase.set(Phase::Done);
    save_training(ui, &saved).await;
}

// ---------------------------------------------------------------- export

pub enum Download {
    Model,
    Head,
    Labels,
    Config,
}

pub fn export(ui: Ui, what: Download) {
    let outcome = with_core(|c| -> Result<(), String> {
        let trained = c.trained.as_ref().ok_or("Train a model first.")?;
        match what {
            Download::Model => {
                let weights = c.weights.as_ref().ok_or("The model weights are not loaded.")?;
                let bytes =
                    export::model_safetensors(weights, &trained.head, &trained.meta).map_err(|e| e.to_string())?;
                download("model.safetensors", &bytes, "application/octet-stream")
            }
            Download::Head => {
                let bytes = export::head_safetensors(&trained.head, &trained.meta).map_err(|e| e.to_string())?;
                download("head.safetensors", &bytes, "application/octet-stream")
            }
            Download::Labels => download(
                "labels.txt",
                export::labels_txt(&trained.meta.labels).as_bytes(),
                "text/plain",
            ),
            Download::Config => download(
                "config.json",
                export::config_json(&trained.meta).as_bytes(),
                "application/json",
            ),
        }
    });
    if let Err(e) = outcome {
        ui.notice.set(Some(format!("Export failed: {e}")));
    }
}

pub fn save_options(options: &TrainOptions) {
    if let Ok(json) = serde_json::to_string(options) {
        super::browser::storage_set("ajuste.options", &json);
    }
}

pub fn saved_options() -> TrainOptions {
    super::browser::storage_get("ajuste.options")
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- kept across reloads

/// The last training, as saved: enough to show its charts and results and to export it after a reload.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedTraining {
    head: Vec<NamedTensor>,
    meta: ExportMetadata,
    history: Vec<EpochMetrics>,
    results: Results,
}

thread_local! {
    /// Bumped by every dataset change; the saver loops until the version it stored is the newest.
    static DATASET_VERSION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Whether the dataset saver loop is running: one save at a time, so an older save can never land last.
    static DATASET_SAVER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Saves the dataset as it is now, in the background. Saves run one at a time and the loop goes again while
/// changes keep coming, so what ends up stored is always the newest dataset.
fn save_dataset(ui: Ui) {
    DATASET_VERSION.with(|v| v.set(v.get() + 1));
    persist::mark_unsaved(persist::DATASET_KEY);
    if DATASET_SAVER.with(|s| s.replace(true)) {
        return; // the running loop will see the new version
    }
    leptos::task::spawn_local(async move {
        loop {
            // Let a burst of changes (a drop, then a rename) settle into one save.
            yield_to_browser().await;
            let version = DATASET_VERSION.with(|v| v.get());
            let bytes = with_core(|c| (c.dataset.num_images() > 0).then(|| snapshot::encode(&c.dataset)));
            let result = match bytes {
                Some(bytes) => persist::save(persist::DATASET_KEY, &bytes).await,
                None => persist::remove(persist::DATASET_KEY).await,
            };
            if let Err(e) = result {
                ui.notice.set(Some(format!(
                    "Your images could not be saved for the next visit ({e}); they stay loaded in this tab."
                )));
                break;
            }
            if DATASET_VERSION.with(|v| v.get()) == version {
                persist::mark_saved(persist::DATASET_KEY);
                break;
            }
        }
        DATASET_SAVER.with(|s| s.set(false));
    });
}

async fn save_training(ui: Ui, saved: &SavedTraining) {
    persist::mark_unsaved(persist::TRAINING_KEY);
    // Checked by reading it back: a non-finite number (a stop before the first epoch, a diverged run) would be
    // written as `null` and could not be read on the next visit.
    let result = serde_json::to_vec(saved).map_err(|e| e.to_string()).and_then(|json| {
        serde_json::from_slice::<SavedTraining>(&json)
            .map(|_| json)
            .map_err(|_| "it holds numbers that are not finite".to_string())
    });
    let result = match result {
        Ok(json) => persist::save(persist::TRAINING_KEY, &json).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => persist::mark_saved(persist::TRAINING_KEY),
        Err(e) => ui.notice.set(Some(format!(
            "The trained model could not be saved for the next visit ({e}): download it before leaving."
        ))),
    }
}

/// Brings back the dataset and the last training from the previous visit, if any. A damaged save is
/// reported and dropped; it never blocks the page.
async fn restore(ui: Ui) {
    let mut restored = Vec::new();
    match persist::load(persist::DATASET_KEY).await {
        Ok(Some(bytes)) => match snapshot::decode(&bytes) {
            Ok(dataset) if with_core(|c| c.dataset.num_images() == 0) => {
                restored.push(format!(
                    "{} images in {} classes",
                    dataset.num_images(),
                    dataset.classes.len()
                ));
                with_core(|c| c.dataset = dataset);
                refresh_classes(ui);
            }
            Ok(dataset) => web_sys::console::info_1(
                &format!(
                    "images were added before the {} saved ones could be restored: keeping the new ones",
                    dataset.num_images()
                )
                .into(),
            ),
            Err(e) => {
                ui.notice.set(Some(format!(
                    "The images saved at your last visit could not be read ({e})."
                )));
                let _ = persist::remove(persist::DATASET_KEY).await;
            }
        },
        Ok(None) => {}
        Err(e) => web_sys::console::warn_1(&format!("no saved work: {e}").into()),
    }
    if let Ok(Some(json)) = persist::load(persist::TRAINING_KEY).await {
        let parsed = serde_json::from_slice::<SavedTraining>(&json)
            .map_err(|e| e.to_string())
            .and_then(|saved| Ok((Head::from_tensors(&saved.head)?, saved)));
        match parsed {
            // Unless something started meanwhile (a drop, a training): then the newer work stays.
            Ok((head, saved)) if !ui.phase.with_untracked(Phase::busy) && with_core(|c| c.trained.is_none()) => {
                restored.push(format!("the model trained on {} classes", saved.meta.labels.len()));
                with_core(|c| c.trained = Some(Trained { head, meta: saved.meta }));
                ui.history.set(saved.history);
                ui.results.set(Some(saved.results));
                ui.phase.set(Phase::Done);
            }
            Ok(_) => {}
            Err(e) => {
                ui.notice.set(Some(format!(
                    "The model saved at your last visit could not be read ({e})."
                )));
                let _ = persist::remove(persist::TRAINING_KEY).await;
            }
        }
    }
    if !restored.is_empty() {
        ui.notice.set(Some(format!(
            "Restored from your last visit: {}.",
            restored.join(" and ")
        )));
    }
}
