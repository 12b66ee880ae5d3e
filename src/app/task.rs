//! A turn of the event loop without `setTimeout`'s clamp, shared by the page and the training worker.

use wasm_bindgen::JsValue;

/// Lets the browser handle input, messages and paint (when a frame is due) before work goes on. A posted message
/// is a macrotask without `setTimeout`'s clamp (nested timers wait at least 4 ms), which alone cost 0.2 s over a
/// 50-epoch training.
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
