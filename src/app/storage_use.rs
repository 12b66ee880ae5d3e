//! How much of the browser's storage the page uses and may use (`navigator.storage`), asking once that it be
//! kept (`persist`: otherwise the browser may evict it when the disk fills), shown in the dataset panel.

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::browser::window;
use super::dataset_flow::DatasetFlow;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StorageUse {
    pub usage: f64,
    pub quota: f64,
    /// The browser promised not to evict it.
    pub persisted: bool,
    /// Feature rows kept in storage (counted at the last restore or training).
    pub features: usize,
    /// Images the saved index names: what a reload brings back (set at the last restore or save).
    pub images: usize,
}

/// Calls `navigator.storage[method]()` and awaits its promise (through `Reflect`: web-sys's binding would
/// rebuild every crate that uses web-sys for one feature flag).
async fn call(method: &str) -> Option<JsValue> {
    let manager = js_sys::Reflect::get(&window().navigator(), &"storage".into()).ok()?;
    let function: js_sys::Function = js_sys::Reflect::get(&manager, &method.into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = function.call0(&manager).ok()?.dyn_into().ok()?;
    JsFuture::from(promise).await.ok()
}

/// Usage and quota in bytes, when the browser says (`features` left 0).
pub async fn estimate() -> Option<StorageUse> {
    let estimate = call("estimate").await?;
    let get = |name: &str| js_sys::Reflect::get(&estimate, &name.into()).ok()?.as_f64();
    let persisted = call("persisted").await.and_then(|v| v.as_bool()) == Some(true);
    Some(StorageUse {
        usage: get("usage")?,
        quota: get("quota")?,
        persisted,
        features: 0,
        images: 0,
    })
}

/// Asks the browser to keep this origin's storage (once per page), in a task of its own: Firefox answers only when
/// the user answers its prompt, maybe never, and no save may wait for that. The usage line is read again after.
pub fn persist(flow: DatasetFlow) {
    thread_local!(static ASKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if ASKED.with(|a| a.replace(true)) {
        return;
    }
    leptos::task::spawn_local(async move {
        call("persist").await;
        refresh(flow, None, None).await;
    });
}

/// Reads the usage again; `features` and `images` are kept unless given.
pub async fn refresh(flow: DatasetFlow, features: Option<usize>, images: Option<usize>) {
    let Some(mut now) = estimate().await else { return };
    let before = flow.storage.get_untracked();
    now.features = features.unwrap_or_else(|| before.map_or(0, |s| s.features));
    now.images = images.unwrap_or_else(|| before.map_or(0, |s| s.images));
    flow.storage.set(Some(now));
}

/// Counts the feature rows in storage from the entries' names (nothing is read).
pub async fn count_features() -> Option<usize> {
    let cache = ajuste::web::store::open().await.ok()?;
    let names = ajuste::web::store::entries(&cache).await.ok()?;
    Some(names.iter().filter_map(|n| ajuste::data::store::features_rows(n)).sum())
}

/// Bytes for people: "820 kB", "12.3 MB", "9.8 GB".
pub fn size(bytes: f64) -> String {
    match bytes {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b => format!("{:.0} kB", b / 1e3),
    }
}

/// The usage line of the dataset panel.
#[component]
pub fn StorageLine() -> impl IntoView {
    let flow = expect_context::<DatasetFlow>();
    let line = move || {
        flow.storage.get().map(|s| {
            format!(
                "Stored in this browser: {} image{}, {} of {}{}.",
                s.images,
                if s.images == 1 { "" } else { "s" },
                size(s.usage),
                size(s.quota),
                if s.persisted {
                    ", kept"
                } else {
                    " (the browser may clear it when space runs out)"
                }
            )
        })
    };
    let attr = move |f: fn(&StorageUse) -> String| move || flow.storage.get().as_ref().map(f).unwrap_or_default();
    view! {
        <p class="storage" data-testid="storage-usage" data-usage=attr(|s| s.usage.to_string())
            data-quota=attr(|s| s.quota.to_string()) data-features=attr(|s| s.features.to_string())
            data-images=attr(|s| s.images.to_string())>
            {line}
        </p>
    }
}
