//! Keeps the user's work across a reload: the loaded dataset and the last trained head, in the browser's
//! Cache Storage under this origin (never sent anywhere). A failed save is reported, and then the page asks
//! before it is closed.

use std::cell::Cell;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use super::browser::{js_error, window};

const CACHE_NAME: &str = "ajuste-work-v1";
pub const DATASET_KEY: &str = "saved/dataset.bin";
pub const TRAINING_KEY: &str = "saved/training.json";

thread_local! {
    /// Whether the work in memory is not (yet) in storage: a save failed, or none was possible.
    static UNSAVED: Cell<bool> = const { Cell::new(false) };
}

pub fn has_unsaved_work() -> bool {
    UNSAVED.with(Cell::get)
}

async fn open() -> Result<Cache, String> {
    let caches = window()
        .caches()
        .map_err(|_| "this page cannot use the browser's storage (not a secure context)".to_string())?;
    let cache = JsFuture::from(caches.open(CACHE_NAME)).await.map_err(js_error)?;
    Ok(cache.unchecked_into())
}

/// Stores `bytes` under `key`, replacing what was there; remembers a failure for the leave-page warning.
pub async fn save(key: &str, bytes: &[u8]) -> Result<(), String> {
    let result = async {
        let cache = open().await?;
        let body = js_sys::Uint8Array::from(bytes);
        let response = Response::new_with_opt_buffer_source(Some(&body)).map_err(js_error)?;
        JsFuture::from(cache.put_with_str(key, &response))
            .await
            .map_err(js_error)?;
        Ok(())
    }
    .await;
    UNSAVED.with(|u| u.set(result.is_err()));
    result
}

/// The bytes stored under `key`, `Ok(None)` when there are none.
pub async fn load(key: &str) -> Result<Option<Vec<u8>>, String> {
    let cache = open().await?;
    let hit = JsFuture::from(cache.match_with_str(key)).await.map_err(js_error)?;
    let Ok(response) = hit.dyn_into::<Response>() else {
        return Ok(None);
    };
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(Some(js_sys::Uint8Array::new(&buffer).to_vec()))
}

pub async fn remove(key: &str) -> Result<(), String> {
    let cache = open().await?;
    JsFuture::from(cache.delete_with_str(key)).await.map_err(js_error)?;
    Ok(())
}
