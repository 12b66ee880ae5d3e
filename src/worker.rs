//! The training worker's binary (built by Trunk as a Web Worker): all of it is `ajuste::web::worker`.

#[cfg(target_arch = "wasm32")]
fn main() {
    ajuste::web::worker::run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("The training worker runs in a browser only (started by the web app).");
}
