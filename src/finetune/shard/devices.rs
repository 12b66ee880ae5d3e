//! Data-parallel training natively (the command's `--devices`): one OS thread per extra device, each holding its
//! own copy of the network on its device, answering shares of a deeper run's batches (`Helpers`) and computing
//! a share of each embedding batch. The browser's CPU pool does the same with workers; here the requests go over
//! channels as they are, without the bytes the workers exchange.
//!
//! burn 0.22's own data-parallel training (`DistributedContext`, gradients all-reduced in `backward`) is only
//! implemented by its CUDA backend (NCCL), and it steps burn's optimizers: our trainer takes its own AdamW step on
//! flat gradients that it already sums over a batch's parts in a fixed order. Sharing those parts between
//! devices works on every backend (CPU threads, Vulkan, CUDA), and gives the same model, bit for bit, on any
//! number of devices for a fixed number of parts.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use burn::tensor::Device;

use super::{Helpers, PIXELS, ShardAnswer, ShardRequest, ShardWorker, answer};
use crate::model::embed::embed_batch;
use crate::model::{EfficientNetLite0, load_efficientnet};

type Reply<T> = Sender<Result<T, String>>;

enum Work {
    Share(Box<ShardRequest>, Reply<ShardAnswer>),
    /// Prepared images one after the other (224×224×3 bytes each).
    Embed(Vec<u8>, Reply<Vec<f32>>),
}

/// The threads beside the caller's, one per device.
pub struct DeviceHelpers {
    helpers: Vec<Sender<Work>>,
}

impl DeviceHelpers {
    /// Starts one thread per device of `devices`, each loading the network from `weights` on its device; returns
    /// once all have loaded, or why one could not.
    pub fn start(weights: Arc<[u8]>, devices: &[Device]) -> Result<Self, String> {
        let mut helpers = Vec::new();
        let mut loaded = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            let (work, inbox) = channel();
            let (ready, wait) = channel();
            let (weights, device) = (weights.clone(), device.clone());
            std::thread::Builder::new()
                .name(format!("ajuste-device-{}", i + 1))
                .spawn(move || serve(&weights, &device, inbox, ready))
                .map_err(|e| format!("cannot start a thread for device {}: {e}", i + 1))?;
            helpers.push(work);
            loaded.push(wait);
        }
        for (i, wait) in loaded.into_iter().enumerate() {
            wait.recv()
                .unwrap_or_else(|_| Err("its thread ended while loading".into()))
                .map_err(|e| format!("device {}: {e}", i + 1))?;
        }
        Ok(Self { helpers })
    }

    /// Threads beside the caller's.
    pub fn len(&self) -> usize {
        self.helpers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.helpers.is_empty()
    }

    /// Features `[n, 1280]` of `images`, as `embed_batch` gives them: the images in contiguous shares, the first
    /// computed here with `model` on `device`, one per helper; a share whose helper fails is computed here.
    pub async fn embed(
        &self,
        model: &EfficientNetLite0,
        images: &[&[u8]],
        device: &Device,
    ) -> Result<Vec<f32>, String> {
        let parts = (self.helpers.len() + 1).min(images.len());
        if parts <= 1 {
            return embed_batch(model, images, device).await;
        }
        let bounds: Vec<usize> = (0..=parts).map(|i| i * images.len() / parts).collect();
        let shares: Vec<&[&[u8]]> = bounds.windows(2).map(|w| &images[w[0]..w[1]]).collect();
        let asked: Vec<_> = self
            .helpers
            .iter()
            .zip(&shares[1..])
            .map(|(helper, share)| ask(helper, |reply| Work::Embed(share.concat(), reply)))
            .collect();
        let mut rows = embed_batch(model, shares[0], device).await?;
        let width = rows.len() / shares[0].len();
        for (share, asked) in shares[1..].iter().zip(asked) {
            match asked.recv().unwrap_or_else(|_| Err(GONE.into())) {
                Ok(part) if part.len() == share.len() * width => rows.extend(part),
                _ => rows.extend(embed_batch(model, share, device).await?),
            }
        }
        Ok(rows)
    }
}

const GONE: &str = "the device's thread has ended";

/// Sends `work` (made with its reply channel) and gives where the answer will come.
fn ask<T>(helper: &Sender<Work>, work: impl FnOnce(Reply<T>) -> Work) -> Receiver<Result<T, String>> {
    let (reply, answer) = channel();
    // A thread that has ended drops the reply: the answer is then "gone", and the caller computes it.
    let _ = helper.send(work(reply));
    answer
}

/// A device's thread: loads the network, then answers until the caller is dropped.
fn serve(weights: &[u8], device: &Device, inbox: Receiver<Work>, ready: Sender<Result<(), String>>) {
    let model = match load_efficientnet(weights, device) {
        Ok(model) => model,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut slot: Option<ShardWorker> = None;
    while let Ok(work) = inbox.recv() {
        match work {
            Work::Share(request, reply) => {
                let _ = reply.send(pollster::block_on(answer(&model, &mut slot, *request)));
            }
            Work::Embed(pixels, reply) => {
                let images: Vec<&[u8]> = pixels.chunks_exact(PIXELS).collect();
                let _ = reply.send(pollster::block_on(embed_batch(&model, &images, device)));
            }
        }
    }
}

impl Helpers for DeviceHelpers {
    fn available(&self) -> usize {
        self.helpers.len()
    }

    fn ask(&self, requests: Vec<ShardRequest>) -> impl Future<Output = Vec<Result<ShardAnswer, String>>> {
        // Sent now: the caller computes its own share while the threads compute theirs.
        let asked: Vec<_> = self
            .helpers
            .iter()
            .zip(requests)
            .map(|(helper, request)| ask(helper, |reply| Work::Share(Box::new(request), reply)))
            .collect();
        async move {
            asked
                .into_iter()
                .map(|answer| answer.recv().unwrap_or_else(|_| Err(GONE.into())))
                .collect()
        }
    }
}
