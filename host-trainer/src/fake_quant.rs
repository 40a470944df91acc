//! Quantization-aware fine-tuning: the float forward pass rounded as the int8 model rounds.
//!
//! A recipe with `quant_aware` set trains through [`Net::forward_quant_sim`]: every weight is
//! rounded to its channel's int8 grid (symmetric, `max|w| / 127`, as [`crate::quantize`] does)
//! and every quantized layer's output to its activation grid (per tensor, from a calibration of
//! the current weights at the start of each epoch), so the network learns weights whose int8
//! twin answers like they do. Gradients pass the rounding unchanged (the straight-through
//! estimator: `x + (round(x) − x).detach()`). The run's result is an ordinary float model;
//! `host-trainer quantize` then calibrates and quantizes it as any other.

use burn::tensor::{Device, Tensor};
use edge_runtime::format::QParams;
use serde::{Deserialize, Serialize};

use crate::data::Sample;
use crate::model::Net;
use crate::quantize::{calibration_samples, Calibration, RangeMethod};

/// The `quant_aware` part of a recipe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantAware {
    /// How the activation ranges of the simulated int8 layers are taken from the calibration
    /// values (re-measured at the start of every epoch).
    pub ranges: RangeMethod,
}

/// The activation grids of `net` (its inference form), one per quantized layer, on the images of
/// `train` that `host-trainer quantize` calibrates on ([`calibration_samples`]).
pub fn calibrate(net: &Net, train: &[Sample], q: QuantAware, device: &Device) -> Vec<QParams> {
    Calibration::collect(net, calibration_samples(train), device).qparams(q.ranges)
}

/// `x` rounded to the int8 grid `q` (clamped to its 256 levels) in the forward pass; the
/// identity in the backward pass.
pub fn activations<const D: usize>(x: Tensor<D>, q: QParams) -> Tensor<D> {
    let zero = f32::from(q.zero);
    let rounded = x
        .clone()
        .div_scalar(q.scale)
        .round()
        .add_scalar(zero)
        .clamp(-128.0, 127.0)
        .sub_scalar(zero)
        .mul_scalar(q.scale);
    straight_through(x, rounded)
}

/// Weights `w` rounded to the symmetric int8 grid of each output channel, the channels along
/// `channel_dim` (0 for a convolution's `[out, in, kh, kw]`, 1 for a dense layer's `[in, out]`).
pub fn weights<const D: usize>(w: Tensor<D>, channel_dim: usize) -> Tensor<D> {
    let mut max = w.clone().detach().abs();
    for dim in (0..D).filter(|&d| d != channel_dim) {
        max = max.max_dim(dim);
    }
    // A channel of zeros keeps scale 1, as the quantizer does.
    let zeros = max.clone().equal_elem(0.0);
    let scale = max.div_scalar(127.0).mask_fill(zeros, 1.0);
    let rounded = w
        .clone()
        .div(scale.clone())
        .round()
        .clamp(-127.0, 127.0)
        .mul(scale);
    straight_through(w, rounded)
}

/// `rounded`'s values with `x`'s gradient.
fn straight_through<const D: usize>(x: Tensor<D>, rounded: Tensor<D>) -> Tensor<D> {
    x.clone() + (rounded - x).detach()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().expect("f32 values")
    }

    #[test]
    fn activations_land_on_the_int8_grid_and_clamp_at_its_ends() {
        let device = Device::default();
        let q = QParams {
            scale: 0.5,
            zero: -100,
        };
        // Representable: (-128 + 100) · 0.5 = -14 … (127 + 100) · 0.5 = 113.5.
        let x =
            Tensor::<1>::from_data(TensorData::from([-20.0f32, -0.3, 0.2, 1.3, 200.0]), &device);
        assert_eq!(values(activations(x, q)), [-14.0, -0.5, 0.0, 1.5, 113.5]);
    }

    #[test]
    fn weights_round_per_output_channel_like_the_quantizer() {
        let device = Device::default();
        // A dense layer [in 2, out 3]: columns are channels, with maxima 1.27, 0.254 and 0.
        let w = Tensor::<2>::from_data(
            TensorData::new(vec![1.27f32, 0.1, 0.0, -0.5, -0.254, 0.0], [2, 3]),
            &device,
        );
        let got = values(weights(w, 1));
        let want = [1.27, 0.1, 0.0, -0.5, -0.254, 0.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        // 0.1012 is not on column 1's grid (step 0.002): 50.6 steps round to 51.
        let w = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 0.1012, 0.0, 0.0, -0.254, 0.0], [2, 3]),
            &device,
        );
        let got = values(weights(w, 1));
        assert!((got[1] - 0.102).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn gradients_pass_the_rounding_unchanged() {
        let device = Device::default().autodiff();
        let x =
            Tensor::<1>::from_data(TensorData::from([0.3f32, 1.7, -2.2]), &device).require_grad();
        let q = QParams {
            scale: 1.0,
            zero: 0,
        };
        let y = activations(x.clone(), q).mul_scalar(2.0).sum();
        let grads = y.backward();
        let g = x.grad(&grads).expect("a gradient");
        assert_eq!(values(g), [2.0, 2.0, 2.0]);
    }
}
