//! The CNN face detector (YuNet-s converted by `host-trainer`; docs/face-detection.md): its int8
//! layers ([`ops`]). Integer-only, no heap.

pub mod ops;

#[cfg(test)]
mod tests;
