//! The CNN face detector on the host: its graph read from ONNX ([`graph`]) and run in plain
//! `f32` ([`float`]), the reference for quantizing it (docs/face-detection.md).

pub mod float;
pub mod graph;
