//! Keeps the user's work across a reload: the last trained model (the images: `store.rs`), in the browser's
//! Cache Storage under this origin (never sent anywhere). Until a change is stored (or when storing it failed)
//! the page asks before it is closed.

use std::cell::RefCell;
use std::collections::HashSet;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use super::browser::{js_error, window};

const CACHE_NAME: &str = "ajuste-work-v1";
/// The dataset's save before the store (`store.rs`): read once, then removed; also the key that says the
/// dataset has unsaved changes.
pub const DATASET_KEY: &str = "saved/dataset.bin";
pub const TRAINING_KEY: &str = "saved/training.json";

thread_local! {
    /// Keys whose newest content is not in storage yet: a save is pending or failed. Tracked per key, so a
    /// later successful save of one thing does not hide a failed save of another.
    static UNSAVED: RefCell<HashSet<&'static str>> = RefCell::new(HashSet::new());
}

pub fn has_unsaved_work() -> bool {
    UNSAVED.with(|u| !u.borrow().is_empty())
}

/// Marks `key` as changed and not yet stored (from the moment of the change, so leaving warns at once).
pub fn mark_unsaved(key: &'static str) {
    UNSAVED.with(|u| u.borrow_mut().insert(key));
}

pub fn mark_saved(key: &'static str) {
    UNSAVED.with(|u| u.borrow_mut().remove(key));
}

/// A named Cache Storage cache of this origin; it exists only in secure contexts (https or localhost).
pub async fn open_cache(name: &str) -> Result<Cache, String> {
    if !window().is_secure_context() {
        return Err("this page cannot use the browser's storage (not a secure context)".into());
    }
    let caches = window().caches().map_err(js_error)?;
    let cache = JsFuture::from(caches.open(name)).await.map_err(js_error)?;
    Ok(cache.unchecked_into())
}

/// Stores `bytes` under `key`, replacing what was there.
pub async fn save(key: &str, bytes: &[u8]) -> Result<(), String> {
    let cache = open_cache(CACHE_NAME).await?;
    let body = js_sys::Uint8Array::from(bytes);
    let response = Response::new_with_opt_buffer_source(Some(&body)).map_err(js_error)?;
    JsFuture::from(cache.put_with_str(key, &response))
        .await
        .map_err(js_error)?;
    Ok(())
}

/// The bytes stored under `key`, `Ok(None)` when there are none.
pub async fn load(key: &str) -> Result<Option<Vec<u8>>, String> {
    let cache = open_cache(CACHE_NAME).await?;
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
    let cache = open_cache(CACHE_NAME).await?;
    JsFuture::from(cache.delete_with_str(key)).await.map_err(js_error)?;
    Ok(())
}
