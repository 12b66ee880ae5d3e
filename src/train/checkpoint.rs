//! What a job hands its host to resume after a reload. A single deeper run's is the deep trainer's own checkpoint
//! (`DeepTrainer::checkpoint`). Auto's LoRA run saves its finished head run before it, so that a resume shows both
//! runs and chooses between them as an uninterrupted Auto does, without training the head again:
//! a magic, the head run's `Trained` as JSON with its length, then the deep trainer's bytes.

use super::pipeline::Trained;

const MAGIC: &[u8; 8] = b"AJAUTO1\0";

pub struct AutoCheckpoint;

impl AutoCheckpoint {
    /// `deep` as it is without a head run, or with Auto's `head` run before it.
    pub fn wrap(head: Option<&Trained>, deep: Vec<u8>) -> Result<Vec<u8>, String> {
        let Some(head) = head else {
            return Ok(deep);
        };
        let json = serde_json::to_vec(head).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + json.len() + deep.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&deep);
        Ok(out)
    }

    /// Auto's head run and its LoRA run's checkpoint.
    pub fn decode(bytes: &[u8]) -> Result<(Trained, Vec<u8>), String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("this saved training is not an Auto training's")?;
        let damaged = || "the saved Auto training is damaged".to_string();
        let len = u32::from_le_bytes(rest.get(..4).ok_or_else(damaged)?.try_into().map_err(|_| damaged())?) as usize;
        let json = rest.get(4..4 + len).ok_or_else(damaged)?;
        let head: Trained = serde_json::from_slice(json).map_err(|e| format!("{}: {e}", damaged()))?;
        Ok((head, rest[4 + len..].to_vec()))
    }
}
