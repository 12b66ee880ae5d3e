//! *Open model*: an exported `model.safetensors` reads back into the same network (and, as the app's kept
//! model, exports the same network again); labels come from labels.txt, config.json or the file; malformed
//! files are refused with a message naming the tensor and the problem.

use ajuste::export::{
    ExportMetadata, OpenError, bundle_files, bundle_zip, merged_model_safetensors, model_card, open_model,
};
use ajuste::floats::max_abs_diff;
use ajuste::head::Head;
use ajuste::model::{BackboneDelta, ConvDelta, ConvUpdate, load_efficientnet};
use ajuste::options::TrainOptions;
use ajuste::rng::Rng;
use ajuste::train::RunMode;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

fn shipped() -> Vec<u8> {
    std::fs::read(SHIPPED).unwrap()
}

fn meta(labels: &[&str]) -> ExportMetadata {
    ExportMetadata {
        labels: labels.iter().map(|l| l.to_string()).collect(),
        options: TrainOptions::default(),
        best_epoch: 2,
        epochs_run: 5,
        val_accuracy: 0.75,
        val_loss: 0.5,
        train_accuracy: 0.9,
        train_loss: 0.3,
        per_class_val_accuracy: vec![0.5, 1.0, 0.75],
        stop_reason: "early stopping".into(),
        num_train: 12,
        num_val: 8,
        kept: RunMode::Head,
    }
}

/// A LoRA change on the head conv (so the backbone differs from the shipped one).
fn lora_delta() -> BackboneDelta {
    let mut rng = Rng::new(7);
    let mut draw = |n: usize, a: f32| (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * a).collect::<Vec<_>>();
    BackboneDelta {
        convs: vec![ConvDelta {
            name: "head.conv".into(),
            shape: [1280, 320, 1, 1],
            update: ConvUpdate::Lora {
                a: draw(4 * 320, 0.05),
                b: draw(1280 * 4, 0.05),
                rank: 4,
                scale: 2.0,
            },
        }],
    }
}

fn exported(delta: &BackboneDelta) -> (Vec<u8>, Head) {
    let head = Head::new(1280, 3, 0, 0.0, &mut Rng::new(2));
    let bytes = merged_model_safetensors(&shipped(), delta, &head, &meta(&["cat", "dog", "fish"])).unwrap();
    (bytes, head)
}

fn logits(model_safetensors: &[u8]) -> Vec<f32> {
    let device = Device::flex();
    let model = load_efficientnet(model_safetensors, &device).unwrap();
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..2 * 3 * 224 * 224).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [2, 3, 224, 224]), &device);
    pollster::block_on(model.forward(x).into_data_async())
        .unwrap()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn export_then_open_gives_the_same_network_and_exports_it_again() {
    let shipped = shipped();
    for (delta, mode) in [
        (BackboneDelta::default(), RunMode::Head),
        (lora_delta(), RunMode::LastBlocks),
    ] {
        let (bytes, head) = exported(&delta);
        let opened = open_model(bytes.clone(), None, None).unwrap();
        assert_eq!(opened.labels, ["cat", "dog", "fish"]);
        assert_eq!(opened.head, head);
        let device = Device::flex();
        let built = opened.build(&device).unwrap();
        assert_eq!(built.num_classes(), 3);
        let original = logits(&bytes);

        // As the app's kept model: the backbone's change as a delta, exported again through the merge.
        let trained = opened.to_trained(&shipped).unwrap();
        assert_eq!(trained.report.mode, mode);
        assert_eq!(trained.delta.convs.is_empty(), mode == RunMode::Head);
        let again = merged_model_safetensors(
            &shipped,
            &trained.delta,
            &trained.head,
            &ExportMetadata::from_report(&trained.report),
        )
        .unwrap();
        let diff = max_abs_diff(&logits(&again), &original);
        eprintln!("{mode:?}: re-exported logits differ by {diff:.2e}");
        assert!(diff < 1e-4, "{mode:?}: {diff}");
        if mode == RunMode::Head {
            assert_eq!(diff, 0.0, "head only: the backbone is the shipped one, bit for bit");
        }
    }
}

#[test]
fn labels_and_config_come_from_the_files_given() {
    let (bytes, _) = exported(&BackboneDelta::default());
    let opened = open_model(bytes.clone(), None, Some("0 ant\n1 bee\n2 cow\n")).unwrap();
    assert_eq!(opened.labels, ["ant", "bee", "cow"]);
    let config = ajuste::export::config_json(&meta(&["x", "y", "z"]));
    let opened = open_model(bytes.clone(), Some(&config), None).unwrap();
    assert_eq!(opened.labels, ["x", "y", "z"]);
    let trained = opened.to_trained(&shipped()).unwrap();
    assert_eq!(trained.report.per_class_accuracy, [0.5, 1.0, 0.75]);
    assert_eq!((trained.report.num_train, trained.report.num_val), (12, 8));
    assert_eq!(trained.report.best.epoch, 2);

    let err = open_model(bytes.clone(), None, Some("0 ant\n1 bee\n")).unwrap_err();
    assert_eq!(err.file, "labels.txt");
    assert!(
        err.problem.contains("2 labels") && err.problem.contains("3 outputs"),
        "{err}"
    );
    let err = open_model(bytes, Some("{not json"), None).unwrap_err();
    assert_eq!(err.file, "config.json");
}

/// A tensor of a file being edited: name, dtype, shape, bytes.
type Raw = (String, Dtype, Vec<usize>, Vec<u8>);

/// The exported file with one tensor replaced (or removed, or added) and everything re-serialised.
fn edited(edit: &dyn Fn(&mut Vec<Raw>)) -> Vec<u8> {
    let (bytes, _) = exported(&BackboneDelta::default());
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<Raw> = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn refused(bytes: Vec<u8>) -> String {
    let err: OpenError = open_model(bytes, None, None).unwrap_err();
    assert_eq!(err.file, "model.safetensors");
    err.to_string()
}

#[test]
fn malformed_files_are_refused_with_a_message_naming_the_problem() {
    let (good, _) = exported(&BackboneDelta::default());
    let err = refused(good[..5].to_vec());
    assert!(err.contains("too short"), "{err}");
    let err = refused(good[..good.len() / 2].to_vec());
    assert!(err.contains("truncated"), "{err}");
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = refused(huge);
    assert!(err.contains("header size"), "{err}");
    let mut not_json = good.clone();
    not_json[8] = b'#';
    assert!(refused(not_json).contains("not valid JSON"));
    let zip = refused(b"PK\x03\x04 a zip, not a model".to_vec());
    // Plain words before the format's own terms.
    assert!(
        zip.contains("it is not a whole model file (damaged, cut short, or another kind of file): the header size"),
        "{zip}"
    );

    let name = "blocks.3.dw.conv.weight";
    let err = refused(edited(&|t| t.retain(|(n, ..)| n != name)));
    assert!(err.contains(name) && err.contains("no tensor"), "{err}");
    let err = refused(edited(&|t| {
        let e = t.iter_mut().find(|(n, ..)| n == name).unwrap();
        e.2 = vec![144, 1, 3, 3];
        e.3.truncate(144 * 9 * 4);
    }));
    assert!(
        err.contains(name) && err.contains("[144, 1, 3, 3]") && err.contains("[144, 1, 5, 5]"),
        "{err}"
    );
    let err = refused(edited(&|t| {
        let e = t.iter_mut().find(|(n, ..)| n == "head.bn.bias").unwrap();
        e.1 = Dtype::I32;
    }));
    assert!(err.contains("head.bn.bias") && err.contains("I32"), "{err}");
    let err = refused(edited(&|t| {
        let e = t.iter_mut().find(|(n, ..)| n == "stem.bn.running_var").unwrap();
        e.3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    }));
    assert!(
        err.contains("stem.bn.running_var") && err.contains("non-finite") && err.contains("index 2"),
        "{err}"
    );
    let err = refused(edited(&|t| {
        t.push(("blocks.3.se.weight".into(), Dtype::F32, vec![2], vec![0; 8]));
    }));
    assert!(
        err.contains("blocks.3.se.weight") && err.contains("unexpected"),
        "{err}"
    );
    let err = refused(edited(&|t| {
        let e = t.iter_mut().find(|(n, ..)| n == "classifier.weight").unwrap();
        e.2 = vec![3 * 1280 / 640, 640];
    }));
    assert!(err.contains("classifier.weight") && err.contains("[6, 640]"), "{err}");
    let err = refused(edited(&|t| t.retain(|(n, ..)| !n.starts_with("classifier."))));
    assert!(err.contains("no classifier"), "{err}");
    // PyTorch's BN counters are not a problem.
    let counter = edited(&|t| t.push(("stem.bn.num_batches_tracked".into(), Dtype::I64, vec![], vec![0; 8])));
    assert!(open_model(counter, None, None).is_ok());
    let err = refused(edited(&|t| {
        t.push(("stem.bn.extra".into(), Dtype::I64, vec![], vec![0; 8]))
    }));
    assert!(err.contains("stem.bn.extra") && err.contains("I64"), "{err}");
}

#[test]
fn model_card_and_bundle_describe_the_kept_model() {
    let (bytes, _) = exported(&lora_delta());
    let config = ajuste::export::config_json(&meta(&["cat", "dog", "fish"]));
    let trained = open_model(bytes, Some(&config), None)
        .unwrap()
        .to_trained(&shipped())
        .unwrap();
    let card = model_card(&trained.report, Some(&[10, 7, 3]));
    for needle in [
        "cat, dog, fish",
        "| cat | 10 |",
        "| dog | 7 |",
        "50.0 %",
        "100.0 %",
        "Apache-2.0",
        "EfficientNet-Lite0",
        "last blocks retrained",
        "12 images",
        "8 held-out",
        // The recipe of the deep run that trained it, not the head-only run's Adam and its weight decay.
        "AdamW, head learning rate 0.001, weight decay 0.01, linear warm-up",
        "Head: linear",
    ] {
        assert!(card.contains(needle), "the card lacks {needle:?}:\n{card}");
    }
    assert!(
        !card.contains("weight decay 0.0001"),
        "the head-only run's recipe on a deep model:\n{card}"
    );
    let files = bundle_files(&shipped(), &trained, Some(&[10, 7, 3])).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "model.safetensors",
            "model.onnx",
            "config.json",
            "labels.txt",
            "README.md"
        ]
    );
    let zip = bundle_zip(&files).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    for (name, bytes) in &files {
        let mut entry = archive.by_name(name).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut back).unwrap();
        assert_eq!(&back, bytes, "{name} in the zip");
    }
}
