//! burn's AdamW, unchanged, with its saved state loaded onto the CPU.
//!
//! burn's `ModuleOptimizer::load_record` rebuilds each parameter's moments on `Device::default()`, which in this
//! build is WebGPU (the first enabled backend): in a browser page on the CPU path that device is never set up,
//! and creating a tensor there panics. This wrapper's state loads its tensors on the CPU (flex) instead; the
//! optimizer moves them to the parameter's device at its next step (`to_device`), as it does for any state.

use burn::optim::{AdamW, AdamWConfig, AdamWState, LearningRate, ModuleOptimizer, Optimizer, RecordState};
use burn::optim::{StateSink, StateSource};
use burn::tensor::{Device, Tensor};

#[derive(Clone)]
pub struct CpuLoadedAdamW(AdamW);

#[derive(Clone)]
pub struct CpuLoadedState<const D: usize>(AdamWState<D>);

impl<const D: usize> RecordState for CpuLoadedState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        self.0.state_flatten(prefix, out);
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, _device: &Device) -> Option<Self> {
        AdamWState::state_unflatten(prefix, src, &Device::flex()).map(Self)
    }
}

impl Optimizer for CpuLoadedAdamW {
    type State<const D: usize> = CpuLoadedState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (tensor, state) = self.0.step(lr, tensor, grad, state.map(|s| s.0));
        (tensor, state.map(CpuLoadedState))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        CpuLoadedState(AdamW::to_device(state.0, device))
    }
}

/// AdamW as `config` builds it (no gradient clipping), for a whole module.
pub fn adamw(config: &AdamWConfig) -> ModuleOptimizer {
    ModuleOptimizer::from(CpuLoadedAdamW(config.build()))
}
