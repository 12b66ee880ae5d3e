//! `ajuste eval MODEL DATA`: a trained model on labelled images — accuracy, the confusion matrix, per-class
//! precision and recall, and the mistakes as a list (text, or JSON with `--json`).

use std::path::PathBuf;

use ajuste::data::Dataset;
use ajuste::head::ConfusionMatrix;
use ajuste::head::metrics::softmax;
use ajuste::predict::Predictor;
use burn::tensor::Device;
use clap::Args;
use serde::Serialize;

/// Images per forward pass.
const BATCH: usize = 32;

#[derive(Args)]
pub struct EvalArgs {
    /// A model.safetensors from the page or `ajuste train`.
    pub model: PathBuf,
    /// A folder of class folders, a .zip of them, or a .ajuste project: the class folders name the truth.
    pub data: PathBuf,
    /// One JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum)]
    pub device: Option<super::device::Choice>,
}

#[derive(Serialize)]
struct ClassFigures {
    class: String,
    images: usize,
    precision: f32,
    recall: f32,
}

#[derive(Serialize)]
struct Mistake {
    image: String,
    truth: String,
    predicted: String,
    confidence: f32,
}

#[derive(Serialize)]
pub struct Evaluation {
    images: usize,
    accuracy: f32,
    labels: Vec<String>,
    /// Rows: true class, columns: predicted class, in the order of `labels`.
    confusion: Vec<Vec<usize>>,
    classes: Vec<ClassFigures>,
    mistakes: Vec<Mistake>,
}

/// Reads the pixels of images kept on disk, by key (as `Host::load_pixels`).
pub type LoadPixels<'a> = dyn Fn(&[u64]) -> Result<Vec<Vec<u8>>, String> + 'a;

/// Classifies every image of `dataset` (pixels from memory, or through `load` for images kept on disk).
pub fn evaluate(
    predictor: &Predictor,
    dataset: &Dataset,
    device: &Device,
    load: &LoadPixels,
    progress: &dyn Fn(usize, usize),
) -> Result<Evaluation, String> {
    let labels = predictor.labels().to_vec();
    let unknown: Vec<&str> = dataset
        .classes
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| !labels.iter().any(|l| l == name))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the model does not know the class(es) {} (its classes: {})",
            unknown.join(", "),
            labels.join(", ")
        ));
    }
    let k = labels.len();
    let samples: Vec<(usize, &ajuste::data::Sample)> = dataset
        .classes
        .iter()
        .flat_map(|c| {
            let truth = labels.iter().position(|l| *l == c.name).expect("checked above");
            c.samples.iter().map(move |s| (truth, s))
        })
        .collect();
    let mut confusion = ConfusionMatrix::new(k);
    let mut mistakes = Vec::new();
    for (done, chunk) in samples.chunks(BATCH).enumerate() {
        let stored: Vec<u64> = chunk
            .iter()
            .filter(|(_, s)| !s.in_memory())
            .map(|(_, s)| s.key())
            .collect();
        let mut loaded = if stored.is_empty() { Vec::new() } else { load(&stored)? }.into_iter();
        let pixels: Vec<Vec<u8>> = chunk
            .iter()
            .map(|(_, s)| {
                if s.in_memory() {
                    Ok(s.pixels.clone())
                } else {
                    loaded.next().ok_or("an image was not read")
                }
            })
            .collect::<Result<_, _>>()?;
        let views: Vec<&[u8]> = pixels.iter().map(Vec::as_slice).collect();
        let logits = pollster::block_on(predictor.logits_batch(&views, device))?;
        for ((truth, sample), row) in chunk.iter().zip(logits.chunks(k)) {
            let probabilities = softmax(row);
            let predicted = (0..k)
                .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
                .unwrap_or(0);
            confusion.add(*truth, predicted);
            if predicted != *truth {
                mistakes.push(Mistake {
                    image: format!("{}/{}", labels[*truth], sample.name),
                    truth: labels[*truth].clone(),
                    predicted: labels[predicted].clone(),
                    confidence: probabilities[predicted],
                });
            }
        }
        progress((done * BATCH + chunk.len()).min(samples.len()), samples.len());
    }
    let recall = confusion.per_class_accuracy();
    let classes = (0..k)
        .map(|c| {
            let column: usize = (0..k).map(|t| confusion.counts[t * k + c]).sum();
            ClassFigures {
                class: labels[c].clone(),
                images: confusion.counts[c * k..(c + 1) * k].iter().sum(),
                precision: confusion.counts[c * k + c] as f32 / column.max(1) as f32,
                recall: recall[c],
            }
        })
        .collect();
    mistakes.sort_by(|a: &Mistake, b| b.confidence.total_cmp(&a.confidence));
    Ok(Evaluation {
        images: samples.len(),
        accuracy: confusion.accuracy(),
        confusion: confusion.counts.chunks(k).map(<[usize]>::to_vec).collect(),
        labels,
        classes,
        mistakes,
    })
}

impl Evaluation {
    /// The evaluation as a person reads it: the headline, per-class figures, the matrix and the mistakes, most
    /// confident first.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Accuracy: {:.1} % ({} of {} images)\n\nclass  images  precision  recall\n",
            self.accuracy * 100.0,
            self.images - self.mistakes.len(),
            self.images
        );
        let width = self.labels.iter().map(String::len).max().unwrap_or(0).max(5);
        for c in &self.classes {
            out += &format!(
                "{:width$}  {:6}  {:8.1} %  {:5.1} %\n",
                c.class,
                c.images,
                c.precision * 100.0,
                c.recall * 100.0
            );
        }
        out += &format!(
            "\nConfusion matrix (rows: true class, columns: predicted)\n{:width$}",
            ""
        );
        for label in &self.labels {
            out += &format!(" {label:>6}");
        }
        for (label, row) in self.labels.iter().zip(&self.confusion) {
            out += &format!("\n{label:width$}");
            for count in row {
                out += &format!(" {count:>6}");
            }
        }
        out += &format!("\n\nMistakes ({}):\n", self.mistakes.len());
        for m in &self.mistakes {
            out += &format!(
                "{}: {} taken for {} ({:.1} %)\n",
                m.image,
                m.truth,
                m.predicted,
                m.confidence * 100.0
            );
        }
        out
    }
}
