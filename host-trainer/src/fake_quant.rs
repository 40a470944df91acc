//! Quantization-aware fine-tuning: the float forward pass rounded as the int8 model rounds.
//!
//! A recipe with `quant_aware` set trains through [`Net::forward_quant_sim`] (the rounding
//! itself: [`crate::int8_grid`]): every weight is rounded to its channel's int8 grid (symmetric, `max|w| / 127`, as [`crate::quantizer`] does)
//! and every quantized layer's output to its activation grid (per tensor, from a calibration of
//! the current weights at the start of each epoch), so the network learns weights whose int8
//! twin answers like they do. Gradients pass the rounding unchanged (the straight-through
//! estimator: `x + (round(x) − x).detach()`). The run's result is an ordinary float model;
//! `host-trainer quantize` then calibrates and quantizes it as any other.

use burn::tensor::Device;
use edge_runtime::format::QParams;

use crate::model::Net;
use crate::quantizer::{calibration_samples, Calibration};
use crate::recipe::QuantAware;
use fer_dataset::data::Sample;

/// The activation grids of `net` (its inference form), one per quantized layer, on the images of
/// `train` that `host-trainer quantize` calibrates on ([`calibration_samples`]).
pub fn calibrate(net: &Net, train: &[Sample], q: QuantAware, device: &Device) -> Vec<QParams> {
    Calibration::collect(net, calibration_samples(train), device).qparams(q.ranges)
}
