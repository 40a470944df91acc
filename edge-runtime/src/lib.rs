//! The int8 runtime of the FER-2013 expression CNN: `no_std`, no heap, integer-only.
//!
//! It owns the model description (labels, shapes, quantization parameters) that every other crate
//! of the workspace uses.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

pub mod labels;
