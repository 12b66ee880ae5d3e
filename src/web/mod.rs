//! The browser code the page and the workers share: which backend runs (`device`), how many threads the CPU
//! path uses (`threads`), the Cache Storage store of images, features and the index (`store`), the CPU
//! helper pool of the training worker (`pool`), the training worker itself (`worker`) and the int8 TFLite export's
//! calibration in it (`calibrate`). Above the core and the protocol; below the two binaries.

pub mod device;
pub mod threads;

#[cfg(all(target_arch = "wasm32", feature = "ml"))]
pub mod calibrate;
#[cfg(all(target_arch = "wasm32", feature = "ml"))]
pub mod pool;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(all(target_arch = "wasm32", feature = "ml"))]
pub mod worker;
