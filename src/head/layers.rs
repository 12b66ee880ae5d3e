//! The new classification head: `Linear(D→K)`, or `Linear(D→H) → ReLU → Dropout → Linear(H→K)`.
//! Weights use PyTorch's layout (`[out, in]`, `y = x Wᵀ + b`) so exports load into `nn.Linear` as they are.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// A fully connected layer, row-major `[out, in]` weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Dense {
    /// PyTorch's `nn.Linear` init: U(-1/√in, 1/√in) for weight and bias.
    pub fn init(d_in: usize, d_out: usize, rng: &mut Rng) -> Self {
        let bound = 1.0 / (d_in as f32).sqrt();
        let mut draw = || (rng.next_f32() * 2.0 - 1.0) * bound;
        let weight = (0..d_in * d_out).map(|_| draw()).collect();
        let bias = (0..d_out).map(|_| draw()).collect();
        Self {
            d_in,
            d_out,
            weight,
            bias,
        }
    }

    /// `x` [n, in] → [n, out]. Rows of `x` and of the weight are contiguous, so the inner dot product vectorises.
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0.0; n * self.d_out];
        for (xr, yr) in x.chunks_exact(self.d_in).zip(y.chunks_exact_mut(self.d_out)).take(n) {
            for ((w, b), out) in self.weight.chunks_exact(self.d_in).zip(&self.bias).zip(yr.iter_mut()) {
                *out = dot(xr, w) + b;
            }
        }
        y
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators so the compiler can keep SIMD lanes busy without reassociating.
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let tail: f32 = a[chunks..].iter().zip(&b[chunks..]).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// A named tensor for export (`classifier.weight`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    #[serde(with = "crate::floats")]
    pub data: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub hidden: Option<Dense>,
    pub out: Dense,
    /// Dropout probability after the hidden layer, used in training only.
    pub dropout: f32,
}

impl Head {
    /// This head with its outputs reordered from the classes `from` (its own) to `to` (the same names, in
    /// another order). Refused, naming them, when the names differ.
    pub fn for_classes(&self, from: &[String], to: &[String]) -> Result<Head, String> {
        let mut sorted_from = from.to_vec();
        let mut sorted_to = to.to_vec();
        sorted_from.sort();
        sorted_to.sort();
        if sorted_from != sorted_to || from.len() != self.out.d_out {
            let missing: Vec<&str> = from.iter().filter(|c| !to.contains(c)).map(String::as_str).collect();
            let new: Vec<&str> = to.iter().filter(|c| !from.contains(c)).map(String::as_str).collect();
            return Err(format!(
                "the model knows the classes {} but the dataset has {}{}{}",
                from.join(", "),
                to.join(", "),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (missing here: {})", missing.join(", "))
                },
                if new.is_empty() {
                    String::new()
                } else {
                    format!(" (new here: {})", new.join(", "))
                },
            ));
        }
        let d_in = self.out.d_in;
        let mut out = Dense {
            d_in,
            d_out: to.len(),
            weight: Vec::with_capacity(self.out.weight.len()),
            bias: Vec::with_capacity(to.len()),
        };
        for class in to {
            let i = from.iter().position(|c| c == class).expect("same names, checked above");
            out.weight.extend_from_slice(&self.out.weight[i * d_in..(i + 1) * d_in]);
            out.bias.push(self.out.bias[i]);
        }
        Ok(Head {
            hidden: self.hidden.clone(),
            out,
            dropout: self.dropout,
        })
    }

    pub fn new(d_in: usize, num_classes: usize, hidden_units: usize, dropout: f32, rng: &mut Rng) -> Self {
        if hidden_units == 0 {
            Self {
                hidden: None,
                out: Dense::init(d_in, num_classes, rng),
                dropout: 0.0,
            }
        } else {
            let hidden = Dense::init(d_in, hidden_units, rng);
            Self {
                hidden: Some(hidden),
                out: Dense::init(hidden_units, num_classes, rng),
                dropout,
            }
        }
    }

    pub fn num_classes(&self) -> usize {
        self.out.d_out
    }

    pub fn d_in(&self) -> usize {
        self.hidden.as_ref().map_or(self.out.d_in, |h| h.d_in)
    }

    /// Logits [n, K] for features [n, D] (inference: no dropout).
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        match &self.hidden {
            Some(hidden) => {
                let mut h = hidden.forward(x, n);
                h.iter_mut().for_each(|v| *v = v.max(0.0));
                self.out.forward(&h, n)
            }
            None => self.out.forward(x, n),
        }
    }

    /// Most likely class per row.
    pub fn predict(&self, x: &[f32], n: usize) -> Vec<usize> {
        self.forward(x, n)
            .chunks_exact(self.num_classes())
            .map(argmax)
            .collect()
    }

    /// The head's tensors with the names of the exported model (`nn.Linear` or `nn.Sequential` naming).
    pub fn tensors(&self) -> Vec<NamedTensor> {
        let dense = |prefix: &str, d: &Dense| {
            vec![
                NamedTensor {
                    name: format!("{prefix}.weight"),
                    shape: vec![d.d_out, d.d_in],
                    data: d.weight.clone(),
                },
                NamedTensor {
                    name: format!("{prefix}.bias"),
                    shape: vec![d.d_out],
                    data: d.bias.clone(),
                },
            ]
        };
        match &self.hidden {
            None => dense("classifier", &self.out),
            Some(hidden) => [dense("classifier.0", hidden), dense("classifier.3", &self.out)].concat(),
        }
    }

    /// Rebuilds a head from `tensors()` output (or the same names read from a file).
    pub fn from_tensors(tensors: &[NamedTensor]) -> Result<Self, String> {
        let find = |name: &str| tensors.iter().find(|t| t.name == name);
        let dense = |prefix: &str| -> Result<Dense, String> {
            let w = find(&format!("{prefix}.weight")).ok_or(format!("missing tensor `{prefix}.weight`"))?;
            let b = find(&format!("{prefix}.bias")).ok_or(format!("missing tensor `{prefix}.bias`"))?;
            let [d_out, d_in] = w.shape[..] else {
                return Err(format!("`{prefix}.weight` must have 2 dimensions, has {:?}", w.shape));
            };
            if w.data.len() != d_out * d_in || b.shape != [d_out] || b.data.len() != d_out {
                return Err(format!(
                    "`{prefix}` has inconsistent shapes {:?} and {:?}",
                    w.shape, b.shape
                ));
            }
            Ok(Dense {
                d_in,
                d_out,
                weight: w.data.clone(),
                bias: b.data.clone(),
            })
        };
        if find("classifier.weight").is_some() {
            return Ok(Self {
                hidden: None,
                out: dense("classifier")?,
                dropout: 0.0,
            });
        }
        let hidden = dense("classifier.0")?;
        let out = dense("classifier.3")?;
        if out.d_in != hidden.d_out {
            return Err(format!(
                "hidden layer has {} outputs but the last layer takes {}",
                hidden.d_out, out.d_in
            ));
        }
        Ok(Self {
            hidden: Some(hidden),
            out,
            dropout: 0.0,
        })
    }
}

pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}
