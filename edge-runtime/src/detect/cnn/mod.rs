//! The CNN face detector (YuNet-s converted by `host-trainer detector`; docs/face-detection.md):
//! its file ([`file`](mod@file)), int8 layers ([`ops`]), the arena plan and the run ([`run`]), and the
//! decoding of boxes, scores and landmarks with non-maximum suppression ([`decode`]).
//! Integer-only, no heap.

pub mod decode;
pub mod file;
pub mod input;
pub mod ops;
pub mod run;

#[cfg(test)]
mod tests;
