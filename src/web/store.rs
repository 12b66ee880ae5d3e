//! The browser side of `crate::data::store`: images, features and the index as entries of one Cache Storage
//! cache of this origin. Used by the page and by the training worker (which reads images and writes features
//! itself, so pixels never travel through the page), hence only globals both have (`caches`).

use crate::data::store::{
    FEATURES_PREFIX, INDEX_ENTRY, decode_features, decode_image, encode_features, encode_image, features_entry,
    image_entry,
};
use crate::data::{Dataset, snapshot};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, CacheStorage, Request, Response};

const CACHE_NAME: &str = "ajuste-store-v1";

fn message(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// The store's cache; Cache Storage exists only in secure contexts (https or localhost).
pub async fn open() -> Result<Cache, String> {
    let global = js_sys::global();
    let secure = js_sys::Reflect::get(&global, &"isSecureContext".into())
        .ok()
        .and_then(|v| v.as_bool());
    let caches = js_sys::Reflect::get(&global, &"caches".into())
        .ok()
        .and_then(|c| c.dyn_into::<CacheStorage>().ok());
    let (Some(true), Some(caches)) = (secure, caches) else {
        return Err("this page cannot use the browser's storage (not a secure context)".into());
    };
    Ok(JsFuture::from(caches.open(CACHE_NAME))
        .await
        .map_err(message)?
        .unchecked_into())
}

pub async fn put(cache: &Cache, name: &str, bytes: &[u8]) -> Result<(), String> {
    let body = js_sys::Uint8Array::from(bytes);
    let response = Response::new_with_opt_buffer_source(Some(&body)).map_err(message)?;
    JsFuture::from(cache.put_with_str(name, &response))
        .await
        .map_err(|e| format!("{name}: {}", message(e)))?;
    Ok(())
}

pub async fn get(cache: &Cache, name: &str) -> Result<Option<Vec<u8>>, String> {
    let hit = JsFuture::from(cache.match_with_str(name)).await.map_err(message)?;
    let Ok(response) = hit.dyn_into::<Response>() else {
        return Ok(None);
    };
    let buffer = JsFuture::from(response.array_buffer().map_err(message)?)
        .await
        .map_err(message)?;
    Ok(Some(js_sys::Uint8Array::new(&buffer).to_vec()))
}

pub async fn delete(cache: &Cache, name: &str) -> Result<(), String> {
    JsFuture::from(cache.delete_with_str(name)).await.map_err(message)?;
    Ok(())
}

/// The names (URLs) of every entry.
pub async fn entries(cache: &Cache) -> Result<Vec<String>, String> {
    let list = JsFuture::from(cache.keys()).await.map_err(message)?;
    Ok(js_sys::Array::from(&list)
        .iter()
        .filter_map(|r| r.dyn_into::<Request>().ok().map(|r| r.url()))
        .collect())
}

/// Stores one image (compressed); returns the bytes it takes.
pub async fn put_image(cache: &Cache, key: u64, pixels: &[u8]) -> Result<usize, String> {
    let png = encode_image(pixels)?;
    put(cache, &image_entry(key), &png).await?;
    Ok(png.len())
}

/// The pixels of these images, in order; a missing or damaged entry is an error naming it.
pub async fn read_images(cache: &Cache, keys: &[u64]) -> Result<Vec<Vec<u8>>, String> {
    // Every lookup, then every body read, goes out at once: each is a round trip to the browser's storage, and
    // read one by one the bodies cost the worker about 8 % of its embedding time.
    let hits: Vec<JsFuture> = keys
        .iter()
        .map(|&key| JsFuture::from(cache.match_with_str(&image_entry(key))))
        .collect();
    let mut bodies = Vec::with_capacity(keys.len());
    for (&key, hit) in keys.iter().zip(hits) {
        let missing = || format!("{} is missing from storage", image_entry(key));
        let response = hit
            .await
            .map_err(message)?
            .dyn_into::<Response>()
            .map_err(|_| missing())?;
        bodies.push(JsFuture::from(response.array_buffer().map_err(message)?));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (&key, body) in keys.iter().zip(bodies) {
        let buffer = body.await.map_err(message)?;
        out.push(decode_image(&js_sys::Uint8Array::new(&buffer).to_vec(), key)?);
    }
    Ok(out)
}

pub async fn put_features(cache: &Cache, keys: &[u64], rows: &[f32]) -> Result<(), String> {
    let first = *keys.first().ok_or("no features to store")?;
    put(cache, &features_entry(first, keys.len()), &encode_features(keys, rows)?).await
}

/// Every stored batch of features; damaged entries are removed and counted, not fatal.
pub async fn read_features(cache: &Cache) -> Result<(Vec<(Vec<u64>, Vec<f32>)>, usize), String> {
    let (mut batches, mut damaged) = (Vec::new(), 0);
    for name in entries(cache).await? {
        if !name.contains(FEATURES_PREFIX) {
            continue;
        }
        match get(cache, &name).await?.map(|bytes| decode_features(&bytes)) {
            Some(Ok(batch)) => batches.push(batch),
            Some(Err(_)) => {
                damaged += 1;
                delete(cache, &name).await?;
            }
            None => {}
        }
    }
    Ok((batches, damaged))
}

/// Writes the index (names and keys): call it once every image it names is stored.
pub async fn write_index(cache: &Cache, dataset: &Dataset) -> Result<(), String> {
    put(cache, INDEX_ENTRY, &crate::data::store::encode_index(dataset)).await
}

/// The dataset the index describes (pixels in storage), `Ok(None)` when there is none.
pub async fn read_index(cache: &Cache) -> Result<Option<Dataset>, String> {
    match get(cache, INDEX_ENTRY).await? {
        Some(bytes) => snapshot::decode(&bytes).map(Some),
        None => Ok(None),
    }
}
