//! Fetches the model weights with progress, through Cache Storage so a reload does not download them again.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use super::browser::{js_error, window};

/// Bump when the shipped weights change, so browsers drop the old copy.
const CACHE_NAME: &str = "ajuste-models-v1";
pub const WEIGHTS_URL: &str = "models/efficientnet_lite0.safetensors";

pub struct Fetched {
    pub bytes: Vec<u8>,
    pub from_cache: bool,
}

async fn read_body(response: &Response, progress: &dyn Fn(u64, Option<u64>)) -> Result<Vec<u8>, String> {
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let body = response.body().ok_or("the response has no body")?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(js_error)?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .map_err(js_error)?
            .as_bool()
            .unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(js_error)?;
        let array: js_sys::Uint8Array = value.unchecked_into();
        let start = bytes.len();
        bytes.resize(start + array.length() as usize, 0);
        array.copy_to(&mut bytes[start..]);
        progress(bytes.len() as u64, total);
    }
    Ok(bytes)
}

/// The response for the weights that boot.js started fetching beside the wasm: `globalThis.ajusteWeights`, a
/// promise of a `Response`, or of null when Cache Storage held them. Taken once; a failed prefetch counts as none.
async fn prefetched() -> Option<Response> {
    let global = js_sys::global();
    let key = JsValue::from_str("ajusteWeights");
    let pending = js_sys::Reflect::get(&global, &key).ok()?;
    let _ = js_sys::Reflect::delete_property(&global, &key);
    let promise = pending.dyn_into::<js_sys::Promise>().ok()?;
    JsFuture::from(promise).await.ok()?.dyn_into::<Response>().ok()
}

/// The weights, from Cache Storage when present, else from the server (then cached).
pub async fn fetch_weights(progress: impl Fn(u64, Option<u64>)) -> Result<Fetched, String> {
    // Without Cache Storage (not a secure context) the weights are simply fetched.
    let cache = super::persist::open_cache(CACHE_NAME).await.ok();
    if let Some(cache) = &cache
        && let Ok(hit) = JsFuture::from(cache.match_with_str(WEIGHTS_URL)).await
        && let Ok(response) = hit.dyn_into::<Response>()
    {
        let bytes = read_body(&response, &progress).await?;
        return Ok(Fetched {
            bytes,
            from_cache: true,
        });
    }
    let response = match prefetched().await {
        Some(response) => response,
        None => JsFuture::from(window().fetch_with_str(WEIGHTS_URL))
            .await
            .map_err(|e| format!("could not download {WEIGHTS_URL}: {}", js_error(e)))?
            .unchecked_into(),
    };
    if !response.ok() {
        return Err(format!("could not download {WEIGHTS_URL}: HTTP {}", response.status()));
    }
    let bytes = read_body(&response, &progress).await?;
    if let Some(cache) = &cache {
        let copy = js_sys::Uint8Array::from(bytes.as_slice());
        if let Ok(stored) = Response::new_with_opt_buffer_source(Some(&copy)) {
            let _ = JsFuture::from(cache.put_with_str(WEIGHTS_URL, &stored)).await;
        }
    }
    Ok(Fetched {
        bytes,
        from_cache: false,
    })
}

/// Fetches a small file of the app (the bundled sample) as bytes.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response: Response = JsFuture::from(window().fetch_with_str(url))
        .await
        .map_err(|e| format!("{url}: {}", js_error(e)))?
        .unchecked_into();
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
