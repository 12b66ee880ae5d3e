//! Step 4, Try it: the kept model (also the one restored after a reload or opened from a project) on a new
//! image — dropped, pasted, picked, or live from the camera. The prediction runs in a worker of its own on the
//! exported model (`ajuste::predict`), one image in flight at a time; the camera sends its next frame when the
//! previous answer is back, the fastest rate the backend allows.

use std::sync::Arc;

use ajuste::predict::Prediction;
use ajuste::protocol::ImageInput;
use leptos::html;
use leptos::prelude::*;
use web_sys::{DragEvent, MediaStream};

use super::ErrorLine;
use super::camera;
use super::error::AppError;
use super::files::{files_from_list, read_file};
use super::model_flow::ModelFlow;
use super::none_of_these::{NoneOfThese, ThresholdControl};
use super::runner::TrainingService;
use super::training_flow::{TrainedOn, TrainingFlow};

/// Classes listed under the answer.
const SHOWN: usize = 5;

/// The last answer, with the image it answers.
#[derive(Clone)]
struct Answer {
    /// `file` or `camera`.
    source: &'static str,
    /// The file's name, or "the camera".
    name: String,
    /// An object URL of the file, shown beside the answer (the camera's image is its live preview).
    preview: Option<String>,
    prediction: Prediction,
}

#[derive(Clone, Copy)]
struct TryIt {
    training: TrainingFlow,
    model: ModelFlow,
    result: RwSignal<Option<Answer>>,
    error: RwSignal<Option<AppError>>,
    /// A prediction is in flight (at most one).
    busy: RwSignal<bool>,
    /// The live camera, while it runs.
    camera: RwSignal<Option<MediaStream>, LocalStorage>,
    service: StoredValue<TrainingService, LocalStorage>,
    video: NodeRef<html::Video>,
    /// The browser is asking for the camera (a second click waits).
    starting: RwSignal<bool>,
}

impl TryIt {
    /// Classifies one image; `None` when another is in flight or there is no model (nothing to show).
    async fn classify(self, input: ImageInput, bytes: Vec<u8>) -> Option<Result<Prediction, String>> {
        let trained: Arc<TrainedOn> = self.training.trained.get_untracked()?;
        let engine = self.model.engine.get_untracked()?;
        if self.busy.get_untracked() {
            return None;
        }
        self.busy.set(true);
        let service = self.service.get_value();
        let result = service
            .predict(&engine, Some((trained.id, &trained.trained)), input, &bytes)
            .await;
        self.busy.set(false);
        Some(result)
    }

    /// Shows an answer, or the error instead of the last answer (which was another image's).
    fn show(&self, answer: Result<Answer, String>) {
        match answer {
            Ok(answer) => {
                self.set(Some(answer));
                self.error.set(None);
            }
            Err(e) => {
                self.set(None);
                self.error.set(Some(AppError::Try(e)));
            }
        }
    }

    /// Replaces the answer shown, freeing the old one's preview.
    fn set(&self, answer: Option<Answer>) {
        let old = self.result.try_update(|r| std::mem::replace(r, answer)).flatten();
        if let Some(url) = old.and_then(|a| a.preview) {
            let _ = web_sys::Url::revoke_object_url(&url);
        }
    }

    /// Classifies a dropped, pasted or picked file (the camera stops: its next frame would replace the answer).
    fn file(self, file: web_sys::File) {
        self.stop_camera();
        let name = file.name();
        let preview = web_sys::Url::create_object_url_with_blob(&file).ok();
        let picked = super::files::PickedFile {
            path: name.clone(),
            file,
        };
        leptos::task::spawn_local(async move {
            // The camera's last frame may still be in flight.
            while self.busy.get_untracked() {
                gloo::timers::future::TimeoutFuture::new(20).await;
            }
            let answer = match read_file(picked).await {
                Ok(input) => self
                    .classify(ImageInput::File, input.bytes)
                    .await
                    .map(|result| result.map_err(|e| format!("{name}: {e}"))),
                Err(e) => Some(Err(e)),
            };
            match answer {
                Some(Ok(prediction)) => self.show(Ok(Answer {
                    source: "file",
                    name,
                    preview,
                    prediction,
                })),
                // Not shown (an error, or no model any more): its preview is freed.
                other => {
                    if let Some(url) = &preview {
                        let _ = web_sys::Url::revoke_object_url(url);
                    }
                    if let Some(Err(e)) = other {
                        self.show(Err(e));
                    }
                }
            }
        });
    }

    async fn start_camera(self) {
        let Some(video) = self.video.get_untracked() else {
            return;
        };
        if self.starting.get_untracked() {
            return;
        }
        self.starting.set(true);
        self.error.set(None);
        let started = camera::start(&video).await;
        self.starting.set(false);
        let stream = match started {
            Ok(stream) => stream,
            Err(why) => return self.error.set(Some(AppError::Camera(why))),
        };
        // `Clone::clone`, not `stream.clone()`: web-sys's inherent `MediaStream::clone` is the JS method, which
        // makes a second stream (another id, tracks that would never be stopped).
        self.camera.set(Some(Clone::clone(&stream)));
        let canvas: web_sys::HtmlCanvasElement = match super::browser::window()
            .document()
            .and_then(|d| d.create_element("canvas").ok())
        {
            Some(canvas) => wasm_bindgen::JsCast::unchecked_into(canvas),
            None => return,
        };
        // Live while this stream is the camera in use: each frame waits for the previous answer.
        while self
            .camera
            .with_untracked(|c| c.as_ref().is_some_and(|c| c.id() == stream.id()))
        {
            match camera::frame(&video, &canvas) {
                Ok(Some((width, height, rgba))) => {
                    if let Some(result) = self.classify(ImageInput::Frame { width, height }, rgba).await {
                        let still_live = self
                            .camera
                            .with_untracked(|c| c.as_ref().is_some_and(|c| c.id() == stream.id()));
                        if still_live {
                            let answer = result
                                .map(|prediction| Answer {
                                    source: "camera",
                                    name: "the camera".into(),
                                    preview: None,
                                    prediction,
                                })
                                .map_err(|e| format!("the camera's image: {e}"));
                            self.show(answer);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => self
                    .error
                    .set(Some(AppError::Camera(format!("Could not read the camera: {e}")))),
            }
            // A turn for the page (and a pause when the frame was not ready yet).
            gloo::timers::future::TimeoutFuture::new(if self.busy.get_untracked() { 50 } else { 15 }).await;
        }
    }

    fn stop_camera(&self) {
        if let Some(stream) = self.camera.get_untracked() {
            if let Some(video) = self.video.get_untracked() {
                camera::stop(&stream, &video);
            }
            self.camera.set(None);
        }
    }
}

#[component]
pub fn TryPanel() -> impl IntoView {
    let training = expect_context::<TrainingFlow>();
    let model = expect_context::<ModelFlow>();
    let video: NodeRef<html::Video> = NodeRef::new();
    let it = TryIt {
        training,
        model,
        video,
        starting: RwSignal::new(false),
        result: RwSignal::new(None),
        error: RwSignal::new(None),
        busy: RwSignal::new(false),
        camera: RwSignal::new_local(None),
        service: StoredValue::new_local(TrainingService::default()),
    };
    let ready = move || training.trained.with(Option::is_some) && model.engine.with(Option::is_some);
    // A new model: the old answer no longer applies (a new threshold keeps it: the verdict follows).
    let model_id = Memo::new(move |_| training.trained.with(|t| t.as_ref().map(|t| t.id)));
    Effect::new(move |_| {
        model_id.track();
        it.set(None);
    });
    let threshold = NoneOfThese::new(training);
    let input: NodeRef<html::Input> = NodeRef::new();
    let on_pick = move |_| {
        let Some(element) = input.get() else { return };
        if let Some(file) = element.files().and_then(|list| files_from_list(&list).pop()) {
            it.file(file.file);
        }
        element.set_value("");
    };
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        let file = ev.data_transfer().and_then(|t| t.files()).and_then(|f| f.get(0));
        match file {
            Some(file) if ready() => it.file(file),
            Some(_) => {}
            None => it.error.set(Some(AppError::Try(
                "the drop: it held no file (drop an image file here)".into(),
            ))),
        }
    };
    let paste = window_event_listener(leptos::ev::paste, move |ev| {
        if !ready() {
            return;
        }
        if let Some(file) = ev.clipboard_data().and_then(|d| d.files()).and_then(|f| f.get(0)) {
            ev.prevent_default();
            it.file(file);
        }
    });
    on_cleanup(move || {
        paste.remove();
        it.stop_camera();
    });
    let live = move || it.camera.with(Option::is_some);
    let on_camera = move |_| {
        if live() {
            it.stop_camera();
        } else {
            leptos::task::spawn_local(it.start_camera());
        }
    };
    let top = move || it.result.with(|r| r.as_ref().and_then(|a| a.prediction.top().cloned()));
    // Below the threshold the answer is "none of these" (its best guess still listed).
    let none = move || top().is_some_and(|t| t.probability < threshold.value());
    let source = move || it.result.with(|r| r.as_ref().map(|a| a.source));
    let name = move || it.result.with(|r| r.as_ref().map(|a| a.name.clone()));
    let preview = move || it.result.with(|r| r.as_ref().and_then(|a| a.preview.clone()));
    view! {
        <section class="panel" aria-labelledby="try-title">
            <h2 id="try-title">"4. Try it"</h2>
            <Show when=ready fallback=|| view! { <p>"Train a model (or open a project) to try it on new images."</p> }>
                <div class="try-drop" on:dragover=move |ev: DragEvent| ev.prevent_default() on:drop=on_drop>
                    <p>"Drop or paste an image here, pick one, or use the camera. The answer is the downloaded model's."</p>
                    <div class="actions">
                        <label class="button">
                            "Pick an image…"
                            <input type="file" class="visually-hidden" accept="image/*" node_ref=input
                                data-testid="try-input" on:change=on_pick />
                        </label>
                        <button type="button" data-testid="try-camera" aria-pressed=move || live().to_string()
                            disabled=move || it.starting.get()
                            on:click=on_camera>{move || if live() { "Stop camera" } else { "Use camera" }}</button>
                    </div>
                </div>
            </Show>
            <video class="try-video" node_ref=video muted=true playsinline=true hidden=move || !live()
                aria-label="Camera preview"></video>
            <div class="try-result" data-testid="try-result" aria-live="polite" aria-busy=move || it.busy.get().to_string()
                data-label=move || top().map(|t| t.label) data-probability=move || top().map(|t| t.probability.to_string()) data-source=source
                data-verdict=move || if none() { "none" } else { "class" }
                hidden=move || it.result.with(Option::is_none)>
                <figure class="try-image">
                    {move || preview().map(|src| view! {
                        <img src=src alt=format!("The image answered: {}", name().unwrap_or_default()) data-testid="try-image" />
                    })}
                    <figcaption data-testid="try-name">{move || name().map(|n| format!("Answer for {n}:"))}</figcaption>
                </figure>
                <p class="try-none" data-testid="try-none" hidden=move || !none()>
                    {move || top().map(|t| format!(
                        "None of these: the best guess, {}, is only {:.1}% likely, below the threshold.",
                        t.label, t.probability * 100.0
                    ))}
                </p>
                <ol>
                    {move || it.result.get().map(|a| a.prediction.classes.into_iter().take(SHOWN).map(|c| view! {
                        <li>
                            <span class="label">{c.label}</span>
                            <meter min="0" max="1" value=c.probability.to_string()></meter>
                            <span class="probability">{format!("{:.1}%", c.probability * 100.0)}</span>
                        </li>
                    }).collect_view())}
                </ol>
            </div>
            <Show when=ready><ThresholdControl threshold /></Show>
            <ErrorLine error=it.error test_id="try-error" />
        </section>
    }
}
