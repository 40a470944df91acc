//! ONNX export (burn has import only): the float model ([`float`]), and the QDQ simulation of the
//! int8 model whose every layer's int8 output is a graph output ([`qdq`]), both built from one
//! [`crate::network::NetworkParams`]. The conventions (input `input` f32 `[N,1,48,48]` = pixel/255,
//! output `scores` `[N,7]`, metadata `labels` and `input_rule`) are in docs/design.md.

pub mod float;
pub mod proto;
pub mod qdq;
