//! Browser glue for the camera: ask for it (only ever from a click), read one frame as RGBA, stop it. Refusals
//! come back as sentences the Try panel shows.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement, MediaStream, MediaStreamConstraints};

use super::browser::{js_error, window};

/// Why the camera cannot be used, from the `DOMException` getUserMedia rejects with.
fn refusal(error: wasm_bindgen::JsValue) -> String {
    let name = error
        .dyn_ref::<web_sys::DomException>()
        .map(|e| e.name())
        .unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" | "SecurityError" => {
            "Camera access was refused. Allow the camera for this page in the browser's site settings, then press Use camera again.".into()
        }
        "NotFoundError" | "OverconstrainedError" => "No camera was found on this device.".into(),
        "NotReadableError" | "AbortError" => {
            "The camera could not be started: another application may be using it.".into()
        }
        _ => format!("The camera could not be started ({}).", js_error(error)),
    }
}

/// Asks for the camera (the browser may prompt) and shows it in `video`.
pub async fn start(video: &HtmlVideoElement) -> Result<MediaStream, String> {
    let devices = window()
        .navigator()
        .media_devices()
        .ok()
        .filter(|d| !d.is_undefined())
        .ok_or("This browser gives no camera access here (the page must be served over HTTPS or from localhost).")?;
    let constraints = MediaStreamConstraints::new();
    constraints.set_video_bool(true);
    constraints.set_audio_bool(false);
    let promise = devices.get_user_media_with_constraints(&constraints).map_err(refusal)?;
    let stream: MediaStream = JsFuture::from(promise).await.map_err(refusal)?.unchecked_into();
    video.set_muted(true);
    video.set_src_object(Some(&stream));
    // Not awaited: it settles only once the preview shows, and frames are read as soon as they arrive.
    let _ = video.play();
    Ok(stream)
}

/// Ends every track, so the camera light goes off.
pub fn stop(stream: &MediaStream, video: &HtmlVideoElement) {
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
            track.stop();
        }
    }
    video.set_src_object(None);
}

/// The frame the video shows now, at its own size, as RGBA; `None` before the first frame arrives.
pub fn frame(video: &HtmlVideoElement, canvas: &HtmlCanvasElement) -> Result<Option<(u32, u32, Vec<u8>)>, String> {
    let (width, height) = (video.video_width(), video.video_height());
    if width == 0 || height == 0 || video.ready_state() < 2 {
        return Ok(None);
    }
    canvas.set_width(width);
    canvas.set_height(height);
    let ctx: CanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(js_error)?
        .ok_or("no 2d context")?
        .unchecked_into();
    ctx.draw_image_with_html_video_element(video, 0.0, 0.0)
        .map_err(js_error)?;
    let data = ctx
        .get_image_data(0.0, 0.0, width as f64, height as f64)
        .map_err(js_error)?;
    Ok(Some((width, height, data.data().0)))
}
