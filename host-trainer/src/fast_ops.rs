//! Training-time formulations of the network's layers that compute exactly what burn's do (the
//! same forward values and gradients, up to float rounding) in fewer passes over memory on the
//! CPU backend. `host-trainer bench --profile` shows where they matter; the tests below compare
//! each with burn's own layer on random inputs.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::{BatchNorm, Dropout};
use burn::tensor::{Distribution, Tensor};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether the network uses these formulations (the default) or burn's own layers.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Switches between these formulations and burn's layers; `host-trainer bench --compare` times
/// both in alternating steps. Results are the same either way (up to float rounding).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Dropout in training mode: the same mask as `Dropout::forward` draws (one Bernoulli draw per
/// element, from the same random stream) and the same values, but the mask is scaled by
/// `1 / (1 - p)` before it meets the activation, so autodiff records one multiplication instead
/// of two (one full pass fewer forward and one backward). Outside training, the input.
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !enabled() {
        return layer.forward(x);
    }
    if !layer.training.is_enabled() || !x.device().is_autodiff() || layer.prob == 0.0 {
        return x;
    }
    let keep = 1.0 - layer.prob;
    // m·(1/keep) with m in {0, 1} is exactly 0 or 1/keep, so x·(m/keep) equals burn's (x·m)/keep
    // bit for bit, and so does the gradient.
    let mask = x
        .random_like(Distribution::Bernoulli(keep))
        .mul_scalar(1.0 / keep);
    x * mask
}

/// BatchNorm in training mode on `[N, C, H, W]`: normalises with the batch's own mean and biased
/// variance per channel, applies `gamma` and `beta`, and moves the running statistics by the
/// layer's momentum — what `BatchNorm::forward` does in training.
///
/// burn 0.22's generic implementation (which the flex backend uses) swaps the batch and channel
/// axes to reduce per channel, so every statistic and every gradient reduction first copies the
/// whole activation into the transposed layout. Here the per-channel sums reduce the contiguous
/// `H·W` axis first and then the batch axis, with no copy; autodiff differentiates the few
/// elementwise operations.
pub fn batch_norm_train(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let count = (n * h * w) as f64;
    let channel_mean = |t: Tensor<4>| -> Tensor<4> {
        t.reshape([n, c, h * w])
            .sum_dim(2)
            .sum_dim(0)
            .div_scalar(count)
            .reshape([1, c, 1, 1])
    };
    let mean = channel_mean(x.clone());
    let centered = x - mean.clone();
    let variance = channel_mean(centered.clone() * centered.clone());
    let inv_std = variance.clone().add_scalar(norm.epsilon).sqrt().recip();
    let scale = norm.gamma.val().reshape([1, c, 1, 1]) * inv_std;
    let out = centered * scale + norm.beta.val().reshape([1, c, 1, 1]);

    let device = out.device();
    let momentum = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    let batch_mean = mean.detach().reshape([c]);
    let batch_var = variance.detach().reshape([c]);
    norm.running_mean.update(
        running_mean
            .mul_scalar(1.0 - momentum)
            .add(batch_mean.mul_scalar(momentum))
            .detach(),
    );
    norm.running_var.update(
        running_var
            .mul_scalar(1.0 - momentum)
            .add(batch_var.mul_scalar(momentum))
            .detach(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::nn::DropoutConfig;
    use burn::tensor::Distribution;

    fn close(a: Tensor<1>, b: Tensor<1>, what: &str) {
        let a = a.into_data().try_into_vec::<f32>().expect("f32");
        let b = b.into_data().try_into_vec::<f32>().expect("f32");
        assert_eq!(a.len(), b.len(), "{what}");
        // Float rounding of sums in another order: relative to the tensor's largest entry.
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 2e-5 + 2e-5 * scale + 1e-4 * y.abs(),
                "{what}[{i}]: {x} vs burn's {y} (largest {scale})"
            );
        }
    }

    #[test]
    fn batch_norm_matches_burns_values_gradients_and_running_statistics() {
        let device = crate::device().autodiff();
        device.seed(7);
        for shape in [[4, 3, 6, 5], [2, 8, 1, 1], [5, 2, 4, 4]] {
            let c = shape[1];
            // Two separate layers (a clone would share its running statistics) with the same
            // non-trivial gamma and beta.
            let gamma = Tensor::<1>::random([c], Distribution::Uniform(-2.0, 2.0), &device);
            let beta = Tensor::<1>::random([c], Distribution::Uniform(-1.0, 1.0), &device);
            let layer = || {
                let mut bn = BatchNormConfig::new(c).init(&device);
                bn.gamma = bn.gamma.map(|_| gamma.clone().detach().require_grad());
                bn.beta = bn.beta.map(|_| beta.clone().detach().require_grad());
                bn
            };
            let (burn_bn, ours_bn) = (layer(), layer());
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &device);
            let g = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &device);

            let x1 = x.clone().require_grad();
            let y1 = burn_bn.forward(x1.clone());
            let grads1 = (y1.clone() * g.clone()).sum().backward();
            let x2 = x.clone().require_grad();
            let y2 = batch_norm_train(&ours_bn, x2.clone());
            let grads2 = (y2.clone() * g.clone()).sum().backward();

            let flat = |t: Tensor<4>| t.reshape([shape.iter().product::<usize>()]);
            close(flat(y1), flat(y2), "output");
            close(
                flat(x1.grad(&grads1).expect("x grad")),
                flat(x2.grad(&grads2).expect("x grad")),
                "input gradient",
            );
            close(
                burn_bn.gamma.grad(&grads1).expect("gamma grad"),
                ours_bn.gamma.grad(&grads2).expect("gamma grad"),
                "gamma gradient",
            );
            close(
                burn_bn.beta.grad(&grads1).expect("beta grad"),
                ours_bn.beta.grad(&grads2).expect("beta grad"),
                "beta gradient",
            );
            close(
                burn_bn.running_mean.value_sync(),
                ours_bn.running_mean.value_sync(),
                "running mean",
            );
            close(
                burn_bn.running_var.value_sync(),
                ours_bn.running_var.value_sync(),
                "running variance",
            );
            // The running statistics moved (the comparison is not of two untouched states).
            let moved: f32 = ours_bn.running_mean.value_sync().abs().sum().into_scalar();
            assert!(moved > 1e-3, "running mean did not move: {moved}");
        }
    }

    #[test]
    fn dropout_is_burns_bit_for_bit() {
        let device = crate::device().autodiff();
        for p in [0.25, 0.1, 0.5] {
            let layer = DropoutConfig::new(p).init();
            let x = Tensor::<4>::random([3, 4, 5, 6], Distribution::Normal(0.0, 1.0), &device);
            let g = Tensor::<4>::random([3, 4, 5, 6], Distribution::Uniform(-1.0, 1.0), &device);
            device.seed(11);
            let x1 = x.clone().require_grad();
            let y1 = layer.forward(x1.clone());
            let grads1 = (y1.clone() * g.clone()).sum().backward();
            device.seed(11);
            let x2 = x.clone().require_grad();
            let y2 = dropout(&layer, x2.clone());
            let grads2 = (y2.clone() * g.clone()).sum().backward();
            let v = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().expect("f32");
            let (y1, y2) = (v(y1), v(y2));
            assert_eq!(y1, y2, "values, p = {p}");
            let dropped = y2.iter().filter(|&&v| v == 0.0).count() as f64 / y2.len() as f64;
            assert!((dropped - p).abs() < 0.15, "dropped {dropped} for p = {p}");
            assert_eq!(
                v(x1.grad(&grads1).expect("grad")),
                v(x2.grad(&grads2).expect("grad")),
                "gradients, p = {p}"
            );
        }
        // Outside training (no autodiff): the input itself.
        let plain = crate::device();
        let layer = DropoutConfig::new(0.5).init();
        let x = Tensor::<2>::random([4, 4], Distribution::Normal(0.0, 1.0), &plain);
        let y = dropout(&layer, x.clone());
        assert_eq!(
            y.into_data().try_into_vec::<f32>().expect("f32"),
            x.into_data().try_into_vec::<f32>().expect("f32")
        );
    }
}
