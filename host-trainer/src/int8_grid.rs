//! The int8 grid, one leaf that the model's quantization-aware pass, the quantizer and the
//! recipes share: how an activation range is chosen from calibration values
//! ([`RangeMethod`]), the scale and zero point of a range ([`qparams_for`]), and the float
//! tensors rounded to the grid with gradients passed straight through ([`activations`],
//! [`weights`]).

use burn::tensor::Tensor;
use edge_runtime::format::QParams;
use serde::{Deserialize, Serialize};

/// How an activation range is chosen from calibration values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum RangeMethod {
    /// The smallest and largest value seen.
    MinMax,
    /// The given lower and upper percentiles (e.g. 0.01 and 99.99), clipping rare outliers.
    Percentile { low: f64, high: f64 },
    /// The pair of percentiles (from a fixed grid) whose int8 grid represents the values with
    /// the least mean squared error: clipping the tail against rounding the bulk.
    Mse,
}

impl RangeMethod {
    /// The range of `values` under this method (`values` is reordered; empty gives `(0, 0)`).
    pub fn range(self, values: &mut [f32]) -> (f32, f32) {
        if values.is_empty() {
            return (0.0, 0.0);
        }
        match self {
            RangeMethod::MinMax => values
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x))),
            RangeMethod::Percentile { low, high } => {
                (percentile(values, low), percentile(values, high))
            }
            RangeMethod::Mse => least_squared_error_range(values),
        }
    }
}

/// Lower and upper percentiles [`RangeMethod::Mse`] chooses from.
const MSE_LOW: [f64; 5] = [0.0, 0.001, 0.01, 0.1, 1.0];
const MSE_HIGH: [f64; 9] = [100.0, 99.999, 99.99, 99.95, 99.9, 99.8, 99.5, 99.0, 98.0];

/// Values the squared error is measured on: an even subsample of at most this many.
const MSE_SAMPLE: usize = 1 << 20;

/// The range of [`RangeMethod::Mse`] for non-empty `values` (reordered).
fn least_squared_error_range(values: &mut [f32]) -> (f32, f32) {
    let step = values.len().div_ceil(MSE_SAMPLE).max(1);
    let sample: Vec<f32> = values.iter().step_by(step).copied().collect();
    let mut best = (f64::INFINITY, (0.0, 0.0));
    for low in MSE_LOW {
        let lo = percentile(values, low);
        for high in MSE_HIGH {
            let hi = percentile(values, high);
            let q = qparams_for(lo, hi);
            let error: f64 = sample
                .iter()
                .map(|&x| {
                    let level = (x / q.scale).round() + f32::from(q.zero);
                    let back = (level.clamp(-128.0, 127.0) - f32::from(q.zero)) * q.scale;
                    f64::from(x - back).powi(2)
                })
                .sum();
            if error < best.0 {
                best = (error, (lo, hi));
            }
        }
    }
    best.1
}

/// The `p`-th percentile (0–100, nearest rank) of non-empty `values`, which it reorders.
fn percentile(values: &mut [f32], p: f64) -> f32 {
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * (values.len() - 1) as f64).round() as usize;
    *values.select_nth_unstable_by(rank, f32::total_cmp).1
}

/// Scale and zero point for a real range (always widened to contain 0, so 0 is exact).
pub fn qparams_for(min: f32, max: f32) -> QParams {
    let (min, max) = (min.min(0.0), max.max(0.0));
    let scale = ((max - min) / 255.0).max(1e-8);
    let zero = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i8;
    QParams { scale, zero }
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
    use burn::tensor::{Device, TensorData};

    #[test]
    fn percentiles_pick_nearest_ranks_and_min_max_the_extremes() {
        let mut v: Vec<f32> = (0..=1000).rev().map(|i| i as f32).collect();
        assert_eq!(RangeMethod::MinMax.range(&mut v), (0.0, 1000.0));
        let p = RangeMethod::Percentile {
            low: 1.0,
            high: 99.0,
        };
        assert_eq!(p.range(&mut v), (10.0, 990.0));
        assert_eq!(RangeMethod::MinMax.range(&mut []), (0.0, 0.0));
    }

    #[test]
    fn mse_ranges_clip_a_far_outlier_and_keep_a_dense_bulk() {
        // A million values spread evenly over 0-10 and one at 300: min/max would make the step
        // 1.2, rounding the whole bulk coarsely; clipping the one value costs less.
        let bulk = || (0..=1_000_000).map(|i| i as f32 / 100_000.0);
        let mut v: Vec<f32> = bulk().chain([300.0]).collect();
        let (lo, hi) = RangeMethod::Mse.range(&mut v);
        assert_eq!(lo, 0.0);
        assert!((9.0..=10.0).contains(&hi), "{hi}");
        // Without the outlier, only a thin tail is worth clipping.
        let mut v: Vec<f32> = bulk().collect();
        let (lo, hi) = RangeMethod::Mse.range(&mut v);
        assert_eq!(lo, 0.0);
        assert!((9.9..=10.0).contains(&hi), "{hi}");
    }

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
