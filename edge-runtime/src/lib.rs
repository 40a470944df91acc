//! The int8 runtime of the FER-2013 expression CNN: `no_std`, no heap, integer-only.
//!
//! It owns the model description (labels, layer table, quantization parameters) and its one
//! parser/validator; `host-trainer` writes model files with it (feature `std`), `edge-cli` and
//! the firmware read them.
//!
//! ```no_run
//! # fn demo(model_bytes: &[u8], face: &[u8; 2304]) -> Result<(), edge_runtime::Error> {
//! let model = edge_runtime::Model::from_bytes(model_bytes)?; // validates everything once
//! let mut arena = [0i8; 32 * 1024];
//! let logits = model.run(face, &mut arena)?;
//! let label = logits.argmax();
//! # Ok(()) }
//! ```
#![cfg_attr(not(any(test, feature = "std")), no_std)]
// `unsafe` is denied everywhere but in the two SIMD dot-product kernels (`kernels/dsp.rs`, inline
// `SMLAD` on Cortex-M; `kernels/simd.rs`, SSE2 / NEON on hosts).
#![deny(unsafe_code)]

pub mod align;
mod container;
pub mod crc32;
pub mod detect;
pub mod error;
pub mod format;
pub mod infer;
pub mod kernels;
pub mod labels;
pub mod normalize;
pub mod pipeline;
pub mod preprocess;
pub mod requant;
pub mod scores;
pub mod steady;
pub mod wide;

pub use error::Error;
pub use format::Model;
pub use infer::{pixel_to_input, Logits, MirroredLogits, INPUT_PIXELS};
pub use labels::{Emotion, CLASS_COUNT};
#[cfg(test)]
mod tests;
