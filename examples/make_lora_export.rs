//! Writes the export folder of a random LoRA fine-tune (rank 16 on every 1×1 conv, block 0's and the head
//! conv's included, and a random 5-class head), for `scripts/check_peft.py` to check in PyTorch, timm and PEFT:
//!
//!     cargo run --release --example make_lora_export -- OUTDIR [SEED]
//!     python3 scripts/check_peft.py OUTDIR [public/models/efficientnet_lite0.safetensors] [IMAGE]
//!
//! OUTDIR gets model.safetensors (merged), adapter_model.safetensors + adapter_config.json (PEFT), labels.txt
//! and config.json. B is drawn non-zero (a fresh adapter has B = 0) so the adapter changes the logits.

use ajuste::export::{
    ExportMetadata, FinetuneRecord, config_json_finetuned, labels_txt, merged_model_safetensors, peft_adapter,
};
use ajuste::head::Head;
use ajuste::model::lora::normal;
use ajuste::model::{BLOCKS, BackboneDelta, ConvDelta, ConvUpdate, EMBEDDING_DIM};
use ajuste::options::FinetuneMode;
use ajuste::options::TrainOptions;
use ajuste::rng::Rng;
use ajuste::train::RunMode;

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);
const RANK: usize = 16;
const ALPHA: f32 = 16.0;

fn lora(name: String, c_in: usize, c_out: usize, rng: &mut Rng) -> ConvDelta {
    let std = 1.0 / (c_in as f32).sqrt();
    ConvDelta {
        name,
        shape: [c_out, c_in, 1, 1],
        update: ConvUpdate::Lora {
            a: (0..RANK * c_in).map(|_| normal(rng) * std).collect(),
            b: (0..c_out * RANK).map(|_| normal(rng) * 0.01).collect(),
            rank: RANK,
            scale: ALPHA / RANK as f32,
        },
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().ok_or("usage: make_lora_export OUTDIR [SEED]")?);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let mut rng = Rng::new(seed);

    let mut convs = Vec::new();
    for (i, spec) in BLOCKS.iter().enumerate() {
        if spec.expand != 1 {
            convs.push(lora(
                format!("blocks.{i}.expand.conv"),
                spec.cin,
                spec.hidden(),
                &mut rng,
            ));
        }
        convs.push(lora(
            format!("blocks.{i}.project.conv"),
            spec.hidden(),
            spec.cout,
            &mut rng,
        ));
    }
    convs.push(lora("head.conv".into(), 320, EMBEDDING_DIM, &mut rng));
    let delta = BackboneDelta { convs };

    let labels: Vec<String> = (0..5).map(|k| format!("class{k}")).collect();
    let head = Head::new(EMBEDDING_DIM, labels.len(), 0, 0.0, &mut rng);
    let meta = ExportMetadata {
        labels: labels.clone(),
        options: TrainOptions::default(),
        best_epoch: 0,
        epochs_run: 0,
        val_accuracy: 0.0,
        val_loss: 0.0,
        train_accuracy: 0.0,
        train_loss: 0.0,
        per_class_val_accuracy: vec![0.0; labels.len()],
        stop_reason: "random LoRA delta for checking the exports".into(),
        num_train: 0,
        num_val: 0,
        kept: RunMode::Lora,
    };
    let mode = FinetuneMode::Lora {
        blocks: BLOCKS.len(),
        rank: RANK,
        alpha: ALPHA,
    };
    let options = TrainOptions {
        seed,
        ..TrainOptions::default()
    }
    .with_mode(mode);
    let record = FinetuneRecord::from_options(&options, mode, "lora", None, Vec::new(), None);

    let backbone = std::fs::read(WEIGHTS)?;
    let adapter = peft_adapter(&backbone, &delta, &head, &meta)?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("model.safetensors"),
        merged_model_safetensors(&backbone, &delta, &head, &meta)?,
    )?;
    std::fs::write(out.join("adapter_model.safetensors"), adapter.safetensors)?;
    std::fs::write(out.join("adapter_config.json"), adapter.config_json)?;
    std::fs::write(out.join("labels.txt"), labels_txt(&labels))?;
    std::fs::write(out.join("config.json"), config_json_finetuned(&meta, &record))?;
    println!(
        "wrote {} (LoRA r{RANK} α{ALPHA} on {} convs, {} classes)",
        out.display(),
        delta.convs.len(),
        labels.len()
    );
    Ok(())
}
