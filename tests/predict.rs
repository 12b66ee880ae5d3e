//! Try it: the prediction on a golden photo is the exported `model.safetensors` run through the reference
//! loader, and equals the path training evaluates with (backbone embedding → plain-Rust head, LoRA adapters
//! unmerged); a camera frame is prepared exactly as a file is.

use ajuste::floats::max_abs_diff;
use ajuste::model::embed::{embed_batch, input_tensor};
use ajuste::model::{BackboneDelta, ConvDelta, ConvUpdate, Lora, load_efficientnet};
use ajuste::options::{HeadOptions, TrainOptions};
use ajuste::predict::{Predictor, exported_model, prepare_frame};
use ajuste::preprocess::prepare_rgb;
use ajuste::rng::Rng;
use ajuste::train::pipeline::Timings;
use ajuste::train::{TrainData, Trained, TrainingRun};
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn shipped() -> Vec<u8> {
    std::fs::read(format!("{ROOT}/public/models/efficientnet_lite0.safetensors")).expect("repo weights")
}

fn golden_photo() -> Vec<u8> {
    std::fs::read(format!("{ROOT}/tests/fixtures/golden/chelsea_cat_original.png")).expect("golden photo")
}

/// A trained head on 1280-wide random features (3 classes), as the pipeline makes it.
fn trained(hidden_units: usize) -> Trained {
    let mut rng = Rng::new(5);
    let (k, n) = (3, 12);
    let data = TrainData {
        features: (0..n * 1280).map(|_| rng.next_f32()).collect(),
        dim: 1280,
        labels: (0..n).map(|i| i % k).collect(),
        class_names: vec!["cat".into(), "coffee".into(), "other".into()],
        keys: (0..n as u64).collect(),
    };
    let options = TrainOptions {
        epochs: 2,
        head: HeadOptions {
            hidden_units,
            ..Default::default()
        },
        ..TrainOptions::default()
    };
    let mut run = TrainingRun::new(data, options).unwrap();
    while run.step().is_some() {}
    run.finish(Timings::default())
}

fn lora_on_head_conv(rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let rank = 2;
    let a = (0..rank * 320).map(|_| (rng.next_f32() - 0.5) * 0.2).collect();
    let b = (0..1280 * rank).map(|_| (rng.next_f32() - 0.5) * 0.2).collect();
    (a, b)
}

fn logits_of(classifier: &Predictor, pixels: &[u8], device: &Device) -> Vec<f32> {
    pollster::block_on(classifier.logits(pixels, device)).unwrap()
}

#[test]
fn prediction_is_the_exported_model_and_the_training_path() {
    let device = Device::flex();
    let pixels = prepare_rgb(&golden_photo()).unwrap();
    let base = load_efficientnet(&shipped(), &device).unwrap();
    let embedding = pollster::block_on(embed_batch(&base, &[&pixels], &device)).unwrap();
    for hidden in [0, 16] {
        let trained = trained(hidden);
        let bytes = exported_model(&shipped(), &trained).unwrap();
        let classifier = Predictor::load(&bytes, &device).unwrap();
        assert_eq!(classifier.labels(), ["cat", "coffee", "other"]);
        let logits = logits_of(&classifier, &pixels, &device);
        // The reference path: the downloaded file through the ordinary loader.
        let reference = load_efficientnet(&bytes, &device).unwrap();
        let reference = pollster::block_on(reference.forward(input_tensor(&[&pixels], &device)).into_data_async())
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(logits, reference, "hidden {hidden}");
        // What training measured: the pretrained embedding through the plain-Rust head.
        let head = trained.head.forward(&embedding, 1);
        let diff = max_abs_diff(&logits, &head);
        assert!(
            diff < 1e-4,
            "hidden {hidden}: logits differ from the training path by {diff}"
        );
        let prediction = pollster::block_on(classifier.predict(&pixels, &device)).unwrap();
        let total: f32 = prediction.classes.iter().map(|c| c.probability).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        let top = prediction.top().unwrap();
        let best = (0..3).max_by(|&i, &j| logits[i].total_cmp(&logits[j])).unwrap();
        assert_eq!(top.label, classifier.labels()[best]);
        assert!(
            prediction
                .classes
                .windows(2)
                .all(|w| w[0].probability >= w[1].probability)
        );
    }
}

#[test]
fn a_lora_model_predicts_with_its_adapters_merged() {
    let device = Device::flex();
    let pixels = prepare_rgb(&golden_photo()).unwrap();
    let mut trained = trained(0);
    let (a, b) = lora_on_head_conv(&mut Rng::new(9));
    trained.delta = BackboneDelta {
        convs: vec![ConvDelta {
            name: "head.conv".into(),
            shape: [1280, 320, 1, 1],
            update: ConvUpdate::Lora {
                a: a.clone(),
                b: b.clone(),
                rank: 2,
                scale: 2.0,
            },
        }],
    };
    let classifier = Predictor::load(&exported_model(&shipped(), &trained).unwrap(), &device).unwrap();
    let logits = logits_of(&classifier, &pixels, &device);
    // The network training ran: the adapter unmerged on the folded head conv.
    let mut adapted = load_efficientnet(&shipped(), &device).unwrap();
    adapted.head_lora = Some(Lora {
        a: Param::from_tensor(Tensor::from_data(TensorData::new(a, [2, 320]), &device)),
        b: Param::from_tensor(Tensor::from_data(TensorData::new(b, [1280, 2]), &device)),
        scale: 2.0,
    });
    let embedding = pollster::block_on(embed_batch(&adapted, &[&pixels], &device)).unwrap();
    let diff = max_abs_diff(&logits, &trained.head.forward(&embedding, 1));
    assert!(diff < 1e-4, "logits differ from the adapted network by {diff}");
    let base = load_efficientnet(&shipped(), &device).unwrap();
    let plain = pollster::block_on(embed_batch(&base, &[&pixels], &device)).unwrap();
    let moved = max_abs_diff(&logits, &trained.head.forward(&plain, 1));
    assert!(
        moved > 1e-3,
        "the adapter changes the logits ({moved}), so a merge that dropped it would fail"
    );
}

#[test]
fn a_camera_frame_is_prepared_as_a_file_and_bad_input_is_refused() {
    let photo = golden_photo();
    let rgba = image::load_from_memory(&photo).unwrap().into_rgba8();
    let (w, h) = rgba.dimensions();
    assert_eq!(
        prepare_frame(w, h, rgba.into_raw()).unwrap(),
        prepare_rgb(&photo).unwrap()
    );
    assert!(prepare_frame(4, 4, vec![0; 10]).unwrap_err().contains("4×4"));
    assert!(prepare_frame(0, 4, vec![]).is_err());
    let device = Device::flex();
    let trained = trained(0);
    let classifier = Predictor::load(&exported_model(&shipped(), &trained).unwrap(), &device).unwrap();
    assert!(
        pollster::block_on(classifier.logits(&[0; 12], &device))
            .unwrap_err()
            .contains("150528")
    );
    assert!(
        Predictor::load(&shipped(), &device).err().unwrap().contains("labels"),
        "the ImageNet file has no labels"
    );
    assert!(Predictor::load(b"not a model", &device).is_err());
}
