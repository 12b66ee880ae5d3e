//! A deeper run survives a reload: its checkpoint after each epoch (from the worker) is stored with the options
//! and the dataset's fingerprint, and brought back on the next visit, where the train panel offers to resume.
//! Stored as one entry: a little-endian u32 length, that many bytes of JSON ([`SavedRun`]), the checkpoint.

use std::sync::Arc;

use ajuste::options::TrainOptions;
use ajuste::train::RunMode;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::persist;
use super::training_flow::TrainingFlow;

pub const CHECKPOINT_KEY: &str = "saved/checkpoint.bin";

/// What the page needs to offer and start a resume; the trainer's own state is in `checkpoint`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedRun {
    pub options: TrainOptions,
    /// Of the dataset the run trained on (`Dataset::fingerprint`).
    pub fingerprint: u64,
    pub mode: RunMode,
    pub epochs_done: usize,
    #[serde(skip)]
    pub checkpoint: Arc<Vec<u8>>,
}

impl SavedRun {
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let json = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(4 + json.len() + self.checkpoint.len());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&self.checkpoint);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let damaged = || "the saved training is damaged".to_string();
        let len = u32::from_le_bytes(bytes.get(..4).ok_or_else(damaged)?.try_into().map_err(|_| damaged())?) as usize;
        let json = bytes.get(4..4 + len).ok_or_else(damaged)?;
        let mut run: SavedRun = serde_json::from_slice(json).map_err(|e| format!("{}: {e}", damaged()))?;
        run.checkpoint = Arc::new(bytes[4 + len..].to_vec());
        Ok(run)
    }
}

/// Brings back an interrupted deeper run from the last visit (a damaged one is dropped).
pub fn restore(training: TrainingFlow) {
    leptos::task::spawn_local(async move {
        let Ok(Some(bytes)) = persist::load(CHECKPOINT_KEY).await else {
            return;
        };
        match SavedRun::decode(&bytes) {
            Ok(run) if !training.is_running() => training.resumable.set(Some(Arc::new(run))),
            Ok(_) => {}
            Err(e) => {
                web_sys::console::warn_1(&e.into());
                let _ = persist::remove(CHECKPOINT_KEY).await;
            }
        }
    });
}
