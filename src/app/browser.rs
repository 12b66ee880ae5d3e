//! Small wrappers over browser APIs: URL parameters, local storage, timers, downloads, canvas data URLs.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, HtmlCanvasElement, ImageData, Url};

pub fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

pub fn js_error(value: JsValue) -> String {
    if let Some(err) = value.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// `?name=value` of the page URL.
pub fn url_param(name: &str) -> Option<String> {
    let search = window().location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
}

pub fn now_ms() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or_default()
}

/// Lets the browser handle input and paint (when a frame is due) before work goes on. A posted message is a
/// macrotask without `setTimeout`'s 4 ms clamp, which alone would cost 0.2 s over a 50-epoch training.
pub async fn yield_to_browser() {
    // The channel is held until the message arrives: ports nobody references may be garbage-collected with
    // the message in flight, and the wait would then never end.
    let Ok(channel) = web_sys::MessageChannel::new() else {
        return gloo::timers::future::TimeoutFuture::new(0).await;
    };
    let port = channel.port1();
    let promise = js_sys::Promise::new(&mut |resolve, _reject| port.set_onmessage(Some(&resolve)));
    if channel.port2().post_message(&JsValue::NULL).is_ok() {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    } else {
        gloo::timers::future::TimeoutFuture::new(0).await;
    }
    port.set_onmessage(None);
}

pub fn storage_get(key: &str) -> Option<String> {
    window().local_storage().ok().flatten()?.get_item(key).ok().flatten()
}

pub fn storage_set(key: &str, value: &str) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.set_item(key, value);
    }
}

/// Starts a download of `bytes` as `filename`.
pub fn download(filename: &str, bytes: &[u8], mime: &str) -> Result<(), String> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let props = BlobPropertyBag::new();
    props.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &props).map_err(js_error)?;
    let url = Url::create_object_url_with_blob(&blob).map_err(js_error)?;
    let document = window().document().ok_or("no document")?;
    let anchor: HtmlAnchorElement = document.create_element("a").map_err(js_error)?.unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(filename);
    anchor.click();
    // Revoke later: revoking at once can cancel the download in some browsers.
    gloo::timers::callback::Timeout::new(10_000, move || {
        let _ = Url::revoke_object_url(&url);
    })
    .forget();
    Ok(())
}

/// RGBA pixels → a PNG data URL for an `<img>` thumbnail.
pub fn rgba_data_url(rgba: &[u8], width: u32, height: u32) -> Result<String, String> {
    let document = window().document().ok_or("no document")?;
    let canvas: HtmlCanvasElement = document.create_element("canvas").map_err(js_error)?.unchecked_into();
    canvas.set_width(width);
    canvas.set_height(height);
    let ctx: web_sys::CanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(js_error)?
        .ok_or("no 2d context")?
        .unchecked_into();
    let data =
        ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(rgba), width, height).map_err(js_error)?;
    ctx.put_image_data(&data, 0.0, 0.0).map_err(js_error)?;
    canvas.to_data_url().map_err(js_error)
}
