//! The project file: a round trip gives back the same images, options, model and export bytes; a damaged or
//! foreign file is refused with an error naming the problem.

mod common;

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};

use ajuste::data::store::encode_image;
use ajuste::data::{ClassData, Dataset, Sample};
use ajuste::export::config_json_of;
use ajuste::options::TrainOptions;
use ajuste::predict::exported_model;
use ajuste::preprocess::prepare_rgb;
use ajuste::project::{self, Project, ProjectError, ProjectModel};
use ajuste::rng::Rng;
use ajuste::train::pipeline::Timings;
use ajuste::train::{TrainData, TrainingRun};
use zip::write::SimpleFileOptions;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FISH: &str = "tests/fixtures/images/fish/categorization_fish17.jpg";

/// The job tests' two synthetic classes, plus a real photo in "red" whose file is still known.
fn dataset_and_originals() -> (Dataset, HashMap<u64, Vec<u8>>) {
    let mut dataset = common::job_host::dataset();
    let photo = std::fs::read(format!("{ROOT}/{FISH}")).unwrap();
    let sample = Sample::new("fish.jpg", prepare_rgb(&photo).unwrap());
    let originals = HashMap::from([(sample.key(), photo)]);
    dataset.classes[0].samples.push(sample);
    dataset.classes.push(ClassData::new("empty", vec![]));
    (dataset, originals)
}

fn model(dataset: &Dataset) -> ProjectModel {
    let mut rng = Rng::new(2);
    let n = dataset.num_images();
    let data = TrainData {
        features: (0..n * 1280).map(|_| rng.next_f32()).collect(),
        dim: 1280,
        labels: dataset.labels(),
        class_names: dataset.class_names(),
        keys: dataset.keys(),
    };
    let options = TrainOptions {
        epochs: 2,
        ..TrainOptions::default()
    };
    let mut run = TrainingRun::new(data, options).unwrap();
    while run.step().is_some() {}
    let trained = run.finish(Timings::default());
    let backbone = std::fs::read(format!("{ROOT}/public/models/efficientnet_lite0.safetensors")).unwrap();
    ProjectModel {
        weights: exported_model(&backbone, &trained).unwrap(),
        config: config_json_of(&trained.report),
        fingerprint: dataset.fingerprint(),
        trained,
    }
}

fn saved() -> (Project, Vec<u8>) {
    let (dataset, originals) = dataset_and_originals();
    let project = Project {
        model: Some(model(&dataset)),
        options: TrainOptions {
            epochs: 7,
            seed: 3,
            ..TrainOptions::default()
        },
        dataset,
    };
    let bytes = project::write(&project, &originals, &HashMap::new()).unwrap();
    (project, bytes)
}

/// A copy of a zip with its entries changed by `edit` (name, bytes) → `None` to drop the entry.
fn rewrite(bytes: &[u8], edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if let Some(data) = edit(&name, data) {
            out.start_file(name, SimpleFileOptions::default()).unwrap();
            out.write_all(&data).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn a_project_comes_back_as_it_was_saved() {
    let (project, bytes) = saved();
    let back = project::read(&bytes).unwrap();
    assert_eq!(back.dataset, project.dataset, "same classes, names and pixels");
    assert_eq!(back.dataset.fingerprint(), project.dataset.fingerprint());
    assert_eq!(back.options, project.options);
    let (model, original) = (back.model.unwrap(), project.model.unwrap());
    assert_eq!(model.weights, original.weights, "model.safetensors byte for byte");
    assert_eq!(model.config, original.config);
    assert_eq!(model.fingerprint, original.fingerprint);
    assert_eq!(
        model.trained.report, original.trained.report,
        "charts, matrix and predictions"
    );
    assert_eq!(model.trained.head.tensors(), original.trained.head.tensors());
    assert_eq!(model.trained.delta, original.trained.delta);
    // The photo is kept as given; the synthetic images as prepared PNGs.
    let mut archive = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
    let mut kept = Vec::new();
    archive
        .by_name("images/0/3.jpg")
        .unwrap()
        .read_to_end(&mut kept)
        .unwrap();
    assert_eq!(kept, std::fs::read(format!("{ROOT}/{FISH}")).unwrap());
    assert!(archive.by_name("images/1/0.png").is_ok());
    // Saving again gives the same file: nothing depends on the time or on map order.
    let (_, again) = saved();
    assert_eq!(again, bytes);
    // A project without a model.
    let bare = Project {
        model: None,
        ..project::read(&bytes).unwrap()
    };
    let back = project::read(&project::write(&bare, &HashMap::new(), &HashMap::new()).unwrap()).unwrap();
    assert!(back.model.is_none());
    assert_eq!(back.dataset, bare.dataset);
}

/// Images the page keeps only in storage (name and key in memory) go in as the PNGs read back from there.
#[test]
fn stored_images_are_saved_from_their_stored_png() {
    let (dataset, _) = dataset_and_originals();
    let mut stored = HashMap::new();
    let mut kept = dataset.clone();
    for class in &mut kept.classes {
        for sample in &mut class.samples {
            stored.insert(sample.key(), encode_image(&sample.pixels).unwrap());
            *sample = Sample::stored(sample.name.clone(), sample.key());
        }
    }
    let project = |dataset: Dataset| Project {
        dataset,
        options: TrainOptions::default(),
        model: None,
    };
    let bytes = project::write(&project(kept.clone()), &HashMap::new(), &stored).unwrap();
    assert_eq!(project::read(&bytes).unwrap().dataset, dataset, "the same pixels back");
    // One image that storage could not give back: the save fails and names it.
    let first = kept.classes[0].samples[0].key();
    stored.remove(&first);
    let error = project::write(&project(kept.clone()), &HashMap::new(), &stored).unwrap_err();
    let name = &kept.classes[0].samples[0].name;
    assert!(error.to_string().contains(name.as_str()), "{error}");
}

fn refused(bytes: &[u8]) -> ProjectError {
    let error = project::read(bytes).expect_err("a damaged project is refused");
    eprintln!("{error}");
    error
}

#[test]
fn damaged_and_foreign_files_are_refused_naming_the_problem() {
    let (_, bytes) = saved();
    let truncated = refused(&bytes[..bytes.len() / 2]);
    assert!(matches!(truncated, ProjectError::NotAZip(_)), "{truncated:?}");
    assert!(truncated.to_string().contains("truncated"));

    let future = rewrite(&bytes, |name, data| {
        Some(if name == "manifest.json" {
            String::from_utf8(data)
                .unwrap()
                .replace("\"version\": 1", "\"version\": 99")
                .into_bytes()
        } else {
            data
        })
    });
    assert_eq!(refused(&future), ProjectError::Version { found: 99 });
    assert!(refused(&future).to_string().contains("version 99"));

    let missing = rewrite(&bytes, |name, data| (name != "images/1/2.png").then_some(data));
    assert_eq!(refused(&missing), ProjectError::Missing("images/1/2.png".into()));
    let no_model = rewrite(&bytes, |name, data| (name != "model/model.safetensors").then_some(data));
    assert!(refused(&no_model).to_string().contains("model/model.safetensors"));

    let mut foreign = zip::ZipWriter::new(Cursor::new(Vec::new()));
    foreign.start_file("notes.txt", SimpleFileOptions::default()).unwrap();
    foreign.write_all(b"hello").unwrap();
    let foreign = foreign.finish().unwrap().into_inner();
    let error = refused(&foreign);
    assert!(matches!(error, ProjectError::Foreign(_)), "{error:?}");
    assert!(error.to_string().contains("not an Ajuste project"));
    let other_manifest = rewrite(&bytes, |name, data| {
        Some(if name == "manifest.json" {
            br#"{"format": "something-else"}"#.to_vec()
        } else {
            data
        })
    });
    assert!(matches!(refused(&other_manifest), ProjectError::Foreign(_)));

    // One flipped byte inside a stored image: its checksum no longer matches.
    let offset = find(&bytes, b"IDAT").expect("a PNG in the project") + 8;
    let mut flipped = bytes.clone();
    flipped[offset] ^= 0xff;
    let error = refused(&flipped);
    assert!(
        matches!(&error, ProjectError::Damaged { entry, .. } if entry.starts_with("images/")),
        "{error:?}"
    );

    let bad_image = rewrite(&bytes, |name, data| {
        Some(if name == "images/1/0.png" {
            b"junk".to_vec()
        } else {
            data
        })
    });
    assert!(refused(&bad_image).to_string().contains("images/1/0.png"));
    assert!(matches!(refused(b"hello"), ProjectError::NotAZip(_)));
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
