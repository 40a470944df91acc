//! The CNN face detector on the host: its graph read from ONNX ([`graph`]), run in plain `f32`
//! ([`float`]), calibrated and quantized into edge-runtime's int8 detector file ([`int8`])
//! (docs/face-detection.md).

pub mod float;
pub mod graph;
pub mod int8;
