//! Exports of a deeper fine-tune: the merged model.safetensors loads back (through the ordinary loader, which
//! refolds BN) into the network that the delta gives in the folded space; the PEFT adapter has the layout PEFT
//! saves, with B unfolded so timm's conv + BN gives the same change; bad deltas are errors that name the conv.

use ajuste::export::{
    ExportMetadata, FinetuneRecord, config_json_finetuned, merged_backbone, merged_model_safetensors, peft_adapter,
    timm_module_name,
};
use ajuste::floats::max_abs_diff;
use ajuste::head::Head;
use ajuste::model::{BackboneDelta, ConvDelta, ConvUpdate, EfficientNetLite0, Lora, TensorFile, load_efficientnet};
use ajuste::options::{AUTO_LORA, AugmentOptions, TrainOptions};
use ajuste::rng::Rng;
use ajuste::train::RunMode;
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

fn shipped() -> Vec<u8> {
    std::fs::read(SHIPPED).expect("repo weights")
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    pollster::block_on(t.into_data_async())
        .unwrap()
        .try_to_vec::<f32>()
        .unwrap()
}

fn uniform(n: usize, amplitude: f32, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * amplitude).collect()
}

fn meta() -> ExportMetadata {
    ExportMetadata {
        labels: vec!["a".into(), "b".into(), "c".into()],
        options: TrainOptions::default(),
        best_epoch: 0,
        epochs_run: 1,
        val_accuracy: 1.0,
        val_loss: 0.1,
        train_accuracy: 1.0,
        train_loss: 0.1,
        per_class_val_accuracy: vec![1.0; 3],
        stop_reason: "test".into(),
        num_train: 3,
        num_val: 3,
        kept: RunMode::Head,
    }
}

fn head() -> Head {
    Head::new(1280, 3, 0, 0.0, &mut Rng::new(4))
}

/// Random LoRA updates (B non-zero so they change the output) on 1×1 convs, block 0's special one included.
fn lora_delta(seed: u64) -> BackboneDelta {
    let mut rng = Rng::new(seed);
    let convs = [
        ("blocks.0.project.conv", [16, 32, 1, 1]),
        ("blocks.14.expand.conv", [1152, 192, 1, 1]),
        ("blocks.15.project.conv", [320, 1152, 1, 1]),
        ("head.conv", [1280, 320, 1, 1]),
    ];
    let rank = 4;
    BackboneDelta {
        convs: convs
            .into_iter()
            .map(|(name, shape)| ConvDelta {
                name: name.into(),
                shape,
                update: ConvUpdate::Lora {
                    a: uniform(rank * shape[1], 1.0 / (shape[1] as f32).sqrt(), &mut rng),
                    b: uniform(shape[0] * rank, 0.05, &mut rng),
                    rank,
                    scale: 2.0,
                },
            })
            .collect(),
    }
}

fn conv_mut<'m>(model: &'m mut EfficientNetLite0, name: &str) -> &'m mut Conv2d {
    let p: Vec<&str> = name.split('.').collect();
    match p[..] {
        ["head", "conv"] => &mut model.head,
        ["blocks", i, "expand", "conv"] => model.blocks[i.parse::<usize>().unwrap()].expand.as_mut().unwrap(),
        ["blocks", i, "dw", "conv"] => &mut model.blocks[i.parse::<usize>().unwrap()].dw,
        ["blocks", i, "project", "conv"] => &mut model.blocks[i.parse::<usize>().unwrap()].project,
        _ => panic!("{name}"),
    }
}

fn lora_slot<'m>(model: &'m mut EfficientNetLite0, name: &str) -> &'m mut Option<Lora> {
    let p: Vec<&str> = name.split('.').collect();
    match p[..] {
        ["head", "conv"] => &mut model.head_lora,
        ["blocks", i, "expand", "conv"] => &mut model.blocks[i.parse::<usize>().unwrap()].expand_lora,
        ["blocks", i, "project", "conv"] => &mut model.blocks[i.parse::<usize>().unwrap()].project_lora,
        _ => panic!("{name}"),
    }
}

/// The pretrained network with `delta` applied in the folded space it runs in (adapters, or replaced convs).
fn apply_folded(delta: &BackboneDelta, device: &Device) -> EfficientNetLite0 {
    let mut model = load_efficientnet(&shipped(), device).unwrap();
    for conv in &delta.convs {
        let [c_out, c_in, kh, kw] = conv.shape;
        match &conv.update {
            ConvUpdate::Lora { a, b, rank, scale } => {
                *lora_slot(&mut model, &conv.name) = Some(Lora {
                    a: Param::from_tensor(Tensor::from_data(TensorData::new(a.clone(), [*rank, c_in]), device)),
                    b: Param::from_tensor(Tensor::from_data(TensorData::new(b.clone(), [c_out, *rank]), device)),
                    scale: *scale,
                })
            }
            ConvUpdate::Full { weight, bias } => {
                let target = conv_mut(&mut model, &conv.name);
                target.weight = Param::from_tensor(Tensor::from_data(
                    TensorData::new(weight.clone(), [c_out, c_in, kh, kw]),
                    device,
                ));
                target.bias = Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(bias.clone(), [c_out]),
                    device,
                )));
            }
        }
    }
    model
}

/// Embeddings and logits of the folded reference and of the merged export loaded back, and how far the delta
/// moved the embedding from the pretrained one (so a merge that dropped the delta cannot pass).
fn compare(delta: &BackboneDelta) -> (f32, f32, f32) {
    let device = Device::flex();
    let mut rng = Rng::new(3);
    let input = Tensor::from_data(
        TensorData::new(uniform(3 * 224 * 224, 1.0, &mut rng), [1, 3, 224, 224]),
        &device,
    );
    let reference = apply_folded(delta, &device);
    let merged_bytes = merged_model_safetensors(&shipped(), delta, &head(), &meta()).unwrap();
    let merged = load_efficientnet(&merged_bytes, &device).unwrap();
    let base = load_efficientnet(&shipped(), &device).unwrap();
    let e_ref = values(reference.embed(input.clone()));
    let e_merged = values(merged.embed(input.clone()));
    let e_base = values(base.embed(input.clone()));
    let logits_ref = head().forward(&e_ref, 1);
    let logits_merged = values(merged.forward(input));
    (
        max_abs_diff(&e_ref, &e_merged),
        max_abs_diff(&logits_ref, &logits_merged),
        max_abs_diff(&e_ref, &e_base),
    )
}

#[test]
fn merged_lora_export_gives_the_folded_lora_forward() {
    let (embedding, logits, moved) = compare(&lora_delta(1));
    eprintln!("LoRA merge: embedding diff {embedding:.2e}, logits diff {logits:.2e}, delta moved {moved:.3}");
    assert!(moved > 1e-2, "the delta barely changes the embedding ({moved})");
    assert!(embedding < 1e-5, "embeddings differ by {embedding}");
    assert!(logits < 1e-5, "logits differ by {logits}");
}

#[test]
fn merged_full_export_gives_the_trained_folded_convs() {
    // Trained folded weights and biases: the pretrained folded ones, perturbed.
    let device = Device::flex();
    let base = load_efficientnet(&shipped(), &device).unwrap();
    let mut model = base;
    let mut rng = Rng::new(8);
    let mut convs = Vec::new();
    for name in ["blocks.15.dw.conv", "blocks.15.project.conv", "head.conv"] {
        let conv = conv_mut(&mut model, name);
        let shape = conv.weight.dims();
        let weight: Vec<f32> = values(conv.weight.val())
            .into_iter()
            .map(|w| w * (1.0 + 0.2 * (rng.next_f32() - 0.5)))
            .collect();
        let bias: Vec<f32> = values(conv.bias.as_ref().unwrap().val())
            .into_iter()
            .map(|b| b + 0.1 * (rng.next_f32() - 0.5))
            .collect();
        convs.push(ConvDelta {
            name: name.into(),
            shape,
            update: ConvUpdate::Full { weight, bias },
        });
    }
    let (embedding, logits, moved) = compare(&BackboneDelta { convs });
    eprintln!("Full merge: embedding diff {embedding:.2e}, logits diff {logits:.2e}, delta moved {moved:.3}");
    assert!(moved > 1e-2, "the delta barely changes the embedding ({moved})");
    assert!(embedding < 1e-5, "embeddings differ by {embedding}");
    assert!(logits < 1e-5, "logits differ by {logits}");
}

#[test]
fn peft_adapter_has_peft_keys_shapes_and_unfolded_b() {
    let delta = lora_delta(2);
    let adapter = peft_adapter(&shipped(), &delta, &head(), &meta()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&adapter.safetensors).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut expected: Vec<String> = [
        "blocks.0.0.conv_pw",
        "blocks.5.3.conv_pw",
        "blocks.6.0.conv_pwl",
        "conv_head",
    ]
    .iter()
    .flat_map(|m| ["A", "B"].map(|ab| format!("base_model.model.{m}.lora_{ab}.weight")))
    .chain(["weight", "bias"].map(|p| format!("base_model.model.classifier.{p}")))
    .collect();
    expected.sort();
    assert_eq!(names, expected);
    let shape = |n: &str| st.tensor(n).unwrap().shape().to_vec();
    assert_eq!(shape("base_model.model.conv_head.lora_A.weight"), [4, 320, 1, 1]);
    assert_eq!(shape("base_model.model.conv_head.lora_B.weight"), [1280, 4, 1, 1]);
    assert_eq!(
        shape("base_model.model.blocks.0.0.conv_pw.lora_B.weight"),
        [16, 4, 1, 1]
    );
    assert_eq!(shape("base_model.model.classifier.weight"), [3, 1280]);

    // What PEFT's merge would do in timm (W + scale·B'A on the unfolded weight) is our merged export.
    let adapter_file = TensorFile::parse(&adapter.safetensors).unwrap();
    let shipped_bytes = shipped();
    let base = TensorFile::parse(&shipped_bytes).unwrap();
    let merged = merged_backbone(&shipped_bytes, &delta).unwrap();
    for conv in &delta.convs {
        let module = timm_module_name(&conv.name).unwrap();
        let (_, a) = adapter_file
            .f32_any_shape(&format!("base_model.model.{module}.lora_A.weight"))
            .unwrap();
        let (_, b) = adapter_file
            .f32_any_shape(&format!("base_model.model.{module}.lora_B.weight"))
            .unwrap();
        let (_, w) = base.f32_any_shape(&format!("{}.weight", conv.name)).unwrap();
        let w_merged = &merged
            .iter()
            .find(|t| t.name == format!("{}.weight", conv.name))
            .unwrap()
            .data;
        let [c_out, c_in, _, _] = conv.shape;
        let mut worst = 0.0f32;
        for o in 0..c_out {
            for i in 0..c_in {
                let ba: f32 = (0..4).map(|r| b[o * 4 + r] * a[r * c_in + i]).sum();
                let peft = w[o * c_in + i] + 2.0 * ba;
                worst = worst.max((peft - w_merged[o * c_in + i]).abs() / (1.0 + peft.abs()));
            }
        }
        assert!(
            worst < 1e-5,
            "{}: PEFT merge and our merge differ by {worst}",
            conv.name
        );
    }

    let config: serde_json::Value = serde_json::from_str(&adapter.config_json).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert_eq!(config["bias"], "none");
    assert_eq!(config["fan_in_fan_out"], false);
    assert!(config["task_type"].is_null());
    assert_eq!(config["modules_to_save"], serde_json::json!(["classifier"]));
    assert_eq!(
        config["target_modules"],
        serde_json::json!([
            "blocks.0.0.conv_pw",
            "blocks.5.3.conv_pw",
            "blocks.6.0.conv_pwl",
            "conv_head"
        ])
    );
}

fn error_of(result: Result<impl std::fmt::Debug, ajuste::export::ExportError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn bad_deltas_are_errors_naming_the_conv() {
    let bytes = shipped();
    let with = |f: &dyn Fn(&mut ConvDelta)| {
        let mut delta = lora_delta(3);
        f(&mut delta.convs[1]);
        delta
    };
    let shape = with(&|c| c.shape = [1152, 191, 1, 1]);
    let err = error_of(merged_backbone(&bytes, &shape));
    assert!(err.contains("blocks.14.expand.conv") && err.contains("191"), "{err}");
    let err = error_of(peft_adapter(&bytes, &shape, &head(), &meta()));
    assert!(err.contains("blocks.14.expand.conv"), "{err}");

    let name = with(&|c| c.name = "blocks.14.squeeze.conv".into());
    assert!(error_of(merged_backbone(&bytes, &name)).contains("blocks.14.squeeze.conv"));
    let not_conv = with(&|c| c.name = "blocks.14.expand.bn".into());
    assert!(error_of(merged_backbone(&bytes, &not_conv)).contains("blocks.14.expand.bn"));

    let short_a = with(&|c| {
        if let ConvUpdate::Lora { a, .. } = &mut c.update {
            a.pop();
        }
    });
    let err = error_of(merged_backbone(&bytes, &short_a));
    assert!(err.contains("blocks.14.expand.conv") && err.contains("rank 4"), "{err}");

    let mut twice = lora_delta(3);
    twice.convs.push(twice.convs[0].clone());
    assert!(error_of(merged_backbone(&bytes, &twice)).contains("changed twice"));
    assert!(error_of(peft_adapter(&bytes, &twice, &head(), &meta())).contains("changed twice"));

    let full = with(&|c| {
        c.update = ConvUpdate::Full {
            weight: vec![0.0; 1152 * 192],
            bias: vec![0.0; 1152],
        }
    });
    assert!(merged_backbone(&bytes, &full).is_ok());
    let err = error_of(peft_adapter(&bytes, &full, &head(), &meta()));
    assert!(
        err.contains("blocks.14.expand.conv") && err.contains("trained in full"),
        "{err}"
    );
    let short_full = with(&|c| {
        c.update = ConvUpdate::Full {
            weight: vec![0.0; 10],
            bias: vec![0.0; 1152],
        }
    });
    assert!(error_of(merged_backbone(&bytes, &short_full)).contains("blocks.14.expand.conv"));

    let err = error_of(peft_adapter(&bytes, &BackboneDelta::default(), &head(), &meta()));
    assert!(err.contains("head-only"), "{err}");
    let mlp = Head::new(1280, 3, 8, 0.1, &mut Rng::new(1));
    assert!(error_of(peft_adapter(&bytes, &lora_delta(3), &mlp, &meta())).contains("linear head"));
    let mixed = with(&|c| {
        if let ConvUpdate::Lora { scale, .. } = &mut c.update {
            *scale = 1.0;
        }
    });
    assert!(error_of(peft_adapter(&bytes, &mixed, &head(), &meta())).contains("one rank and scale"));
}

#[test]
fn config_records_the_finetune() {
    let options = TrainOptions::default();
    let runs = vec![
        serde_json::json!({"mode": "head", "val_loss": 0.5}),
        serde_json::json!({"mode": "lora"}),
    ];
    let record = FinetuneRecord::from_options(
        &options,
        AUTO_LORA,
        "auto",
        Some(AugmentOptions::default()),
        runs,
        Some("lower validation loss".into()),
    );
    let config: serde_json::Value = serde_json::from_str(&config_json_finetuned(&meta(), &record)).unwrap();
    let f = &config["finetune"];
    assert_eq!(f["mode"], "lora");
    assert_eq!(f["requested"], "auto");
    assert_eq!(f["blocks"], 8);
    assert_eq!(f["lora_rank"], 16);
    assert_eq!(f["runs"].as_array().unwrap().len(), 2);
    assert_eq!(f["augmentation"]["horizontal_flip"], false);
    assert_eq!(config["labels"], serde_json::json!(["a", "b", "c"]));
    let back: FinetuneRecord = serde_json::from_value(f.clone()).unwrap();
    assert_eq!(back, record);
}
