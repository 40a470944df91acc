//! Host side of the pipeline: the paper's CNN in burn, training, plots, ONNX export and int8
//! quantization. FER-2013 loading, the split, the metrics and the RNG are `fer_dataset`'s.

// Terminal output that never stops a run (`say!`, `show!`).
#[macro_use]
pub mod say;

// What a run is: the network, the recipe, and the training that follows it.
pub mod averaging;
pub mod checkpoint;
pub mod distill;
pub mod fake_quant;
pub mod handover;
pub mod history;
pub mod int8_grid;
pub mod model;
pub mod recipe;
pub mod training;
// What a step eats: augmented batches assembled beside the step, and evaluation.
pub mod augment;
pub mod batches;
pub mod camera_like;
pub mod evaluate;
pub mod fast_ops;
// What a finished run writes: reports, plots, ONNX, int8.
pub mod artifacts;
pub mod network;
pub mod onnx;
pub mod plots;
pub mod quantizer;
// The command line and its commands.
pub mod cli;
pub mod commands;
// Tools beside the pipeline: timing, the face-detector converter, small helpers.
pub mod allocator;
pub mod bench;
pub mod cascade_xml;
pub mod detector;
pub mod fsutil;
pub mod profile;
pub mod progress;

/// The backend device: flex (pure-Rust CPU) by default; with the `wgpu`, `cuda` or `tch` feature
/// burn picks that backend first. The `BURN_DEVICE` environment variable overrides the choice.
pub fn device() -> burn::tensor::Device {
    burn::tensor::Device::default()
}
