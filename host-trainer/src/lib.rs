//! Host side of the pipeline: FER-2013 loading and splitting, the paper's CNN in burn, training,
//! metrics and plots, ONNX export and int8 quantization.

pub use fer_dataset::{data, metrics, rng, split};

pub mod augment;
pub mod averaging;
pub mod batches;
pub mod bench;
pub mod cascade_xml;
pub mod cli;
pub mod export_int8;
pub mod fast_ops;
pub mod fsutil;
pub mod model;
pub mod onnx;
pub mod plots;
pub mod profile;
pub mod quantize;
pub mod recipe;
pub mod report;
pub mod training;

/// The backend device: flex (pure-Rust CPU) by default; with the `wgpu`, `cuda` or `tch` feature
/// burn picks that backend first. The `BURN_DEVICE` environment variable overrides the choice.
pub fn device() -> burn::tensor::Device {
    burn::tensor::Device::default()
}
