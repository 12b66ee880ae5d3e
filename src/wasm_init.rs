//! Runs the wasm module's constructors exactly once.
//!
//! cubecl uses `inventory`, which registers items through wasm constructors. When no export calls
//! `__wasm_call_ctors`, wasm-ld wraps *every* export in a call to it, so each JS→wasm call re-runs all the
//! constructors (measured here at ~80% of training time). Calling it once ourselves turns that off.

use std::sync::atomic::{AtomicBool, Ordering};

unsafe extern "C" {
    fn __wasm_call_ctors();
}

static DONE: AtomicBool = AtomicBool::new(false);

/// Call first thing in `main()` and in each browser test.
pub fn init_once() {
    if !DONE.swap(true, Ordering::SeqCst) {
        // SAFETY: guarded to run once, before any other use of the registered items.
        unsafe { __wasm_call_ctors() };
        console_error_panic_hook::set_once();
    }
}
