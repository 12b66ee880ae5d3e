//! Adam with PyTorch's semantics: L2 weight decay added to the gradient (`torch.optim.Adam`), or decoupled
//! (`torch.optim.AdamW`). Bias-corrected, beta1 0.9, beta2 0.999, eps 1e-8.

#[derive(Debug, Clone)]
pub struct Adam {
    lr: f32,
    weight_decay: f32,
    decoupled: bool,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl Adam {
    /// `sizes`: length of each parameter tensor, in the order `step` receives them.
    pub fn new(sizes: &[usize], lr: f32, weight_decay: f32, decoupled: bool) -> Self {
        Self {
            lr,
            weight_decay,
            decoupled,
            step: 0,
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// One update of every parameter with its gradient.
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) {
        self.step += 1;
        let c1 = 1.0 - BETA1.powi(self.step);
        let c2 = 1.0 - BETA2.powi(self.step);
        let step_size = self.lr / c1;
        let c2_sqrt = c2.sqrt();
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for j in 0..p.len() {
                let mut grad = g[j];
                if self.decoupled {
                    p[j] -= self.lr * self.weight_decay * p[j];
                } else {
                    grad += self.weight_decay * p[j];
                }
                m[j] = BETA1 * m[j] + (1.0 - BETA1) * grad;
                v[j] = BETA2 * v[j] + (1.0 - BETA2) * grad * grad;
                p[j] -= step_size * m[j] / (v[j].sqrt() / c2_sqrt + EPS);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Adam;

    #[test]
    fn first_step_moves_by_the_learning_rate() {
        // Adam's first step is lr * sign(grad) (bias correction makes m̂/√v̂ = ±1).
        let mut adam = Adam::new(&[2], 0.1, 0.0, false);
        let mut p = vec![1.0f32, 1.0];
        adam.step(&mut [&mut p], &[&[0.5, -2.0]]);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn decoupled_decay_shrinks_weights_without_gradient() {
        let mut adam = Adam::new(&[1], 0.1, 0.5, true);
        let mut p = vec![2.0f32];
        adam.step(&mut [&mut p], &[&[0.0]]);
        assert!((p[0] - (2.0 - 0.1 * 0.5 * 2.0)).abs() < 1e-6, "{p:?}");
    }
}
