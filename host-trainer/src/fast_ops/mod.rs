//! Training-time formulations of the network's layers that compute exactly what burn's do (the
//! same forward values and gradients, up to float rounding) in fewer passes over memory on the
//! CPU backend. `host-trainer bench --profile` shows where they matter; the tests below compare
//! each with burn's own layer on random inputs.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Dropout};
use burn::tensor::{Device, Distribution, Tensor};

#[cfg(feature = "flex")]
mod flex_ops;
#[cfg(feature = "flex")]
pub mod kernels;

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

/// Whether `device` runs on the flex backend (with or without autodiff), where the extension
/// operations of `flex_ops` exist.
fn on_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        matches!(
            device.clone().inner().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

/// Whether `x` takes the extension operations of `flex_ops`: they are enabled, `x` lives on flex
/// and holds f32 (the kernels are written for f32; a run in another float type keeps burn's
/// layers).
fn use_flex_ops<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && on_flex(&x.device()) && x.dtype() == burn::tensor::DType::F32
}

/// The network's convolution (3x3, stride 1, 'same' padding, with bias) and its ReLU. On flex,
/// one extension operation with its own backward (the weight gradient as one matrix product over
/// an im2col, the ReLU applied in place); elsewhere, or for any other configuration, burn's
/// layers.
pub fn conv3x3_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if use_flex_ops(&x)
        && conv.kernel_size == [3, 3]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && conv.padding == burn::nn::PaddingConfig2d::Same
    {
        if let Some(bias) = &conv.bias {
            use burn::backend::Dispatch;
            use flex_ops::TrainOps;
            return Tensor::from_dispatch(<Dispatch as TrainOps>::conv3x3_relu(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            ));
        }
    }
    burn::tensor::activation::relu(conv.forward(x))
}

/// The network's 2x2 max pool (stride 2, no padding, floor). On flex, the extension operation
/// (one byte per output says which input won, for the gradient); elsewhere burn's layer.
pub fn max_pool2x2(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if use_flex_ops(&x)
        && pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && pool.padding == burn::nn::PaddingConfig2d::Valid
        && !pool.ceil_mode
    {
        use burn::backend::Dispatch;
        use flex_ops::TrainOps;
        return Tensor::from_dispatch(<Dispatch as TrainOps>::max_pool2x2(x.into_dispatch()));
    }
    pool.forward(x)
}

/// Dropout in training mode: zero with probability `p`, otherwise scaled by `1 / (1 - p)`, as
/// `Dropout::forward` does; the mask is scaled before it meets the activation, so autodiff records
/// one multiplication instead of two. Outside training, the input.
///
/// burn draws its mask one element at a time from one random stream on one thread (14 ms of
/// the step for the first block's `[40, 32, 24, 24]`). On flex the mask comes from
/// [`kernels::dropout_mask`] instead: a counter-based generator run on every core, seeded by one
/// draw from burn's stream, so a seeded run is still reproducible. Other backends keep burn's
/// mask, bit for bit.
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !enabled() {
        return layer.forward(x);
    }
    if !layer.training.is_enabled() || !x.device().is_autodiff() || layer.prob == 0.0 {
        return x;
    }
    let keep = 1.0 - layer.prob;
    #[cfg(feature = "flex")]
    if use_flex_ops(&x) {
        let device = x.device();
        let shape = x.shape();
        let mask = kernels::dropout_mask(shape.num_elements(), keep, draw_seed(&device));
        let mask = Tensor::<1>::from_data(
            burn::tensor::TensorData::new(mask, [shape.num_elements()]),
            &device,
        );
        return x * mask.reshape(shape);
    }
    // m·(1/keep) with m in {0, 1} is exactly 0 or 1/keep, so x·(m/keep) equals burn's (x·m)/keep
    // bit for bit, and so does the gradient.
    let mask = x
        .random_like(Distribution::Bernoulli(keep))
        .mul_scalar(1.0 / keep);
    x * mask
}

/// A 64-bit seed from burn's random stream on `device` (which `device.seed` makes reproducible).
#[cfg(feature = "flex")]
fn draw_seed(device: &Device) -> u64 {
    // Four draws of 24 random bits each (an f32 in [0, 1) carries 24), read as f32 whatever the
    // device's float type.
    let draws = Tensor::<1>::random([4], Distribution::Uniform(0.0, 1.0), device).into_data();
    draws.iter::<f32>().fold(0u64, |seed, u| {
        (seed << 24) ^ (seed >> 40) ^ ((u * 16_777_216.0) as u64)
    })
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
    let c = x.dims()[1];
    let (out, mean, variance) = if use_flex_ops(&x) {
        batch_norm_train_flex(norm, x)
    } else {
        batch_norm_train_tensors(norm, x)
    };
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

/// The normalised output and the batch's per-channel mean and biased variance, from tensor
/// operations that autodiff differentiates (any backend).
fn batch_norm_train_tensors(norm: &BatchNorm, x: Tensor<4>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
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
    (out, mean, variance)
}

/// The same on flex: one extension operation with its own backward (two passes over the
/// activation forward, two backward, instead of the dozen of the tensor formulation).
#[cfg(feature = "flex")]
fn batch_norm_train_flex(norm: &BatchNorm, x: Tensor<4>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
    use burn::backend::Dispatch;
    use flex_ops::TrainOps;
    let out = <Dispatch as TrainOps>::batch_norm_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    (
        Tensor::from_dispatch(out.output),
        Tensor::from_dispatch(out.mean),
        Tensor::from_dispatch(out.variance),
    )
}

#[cfg(not(feature = "flex"))]
fn batch_norm_train_flex(norm: &BatchNorm, x: Tensor<4>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
    batch_norm_train_tensors(norm, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::nn::DropoutConfig;
    use burn::nn::PaddingConfig2d;
    use burn::tensor::Distribution;

    /// burn's random stream is one per process: tests that seed it and draw from it run one at
    /// a time, or a test running beside them would move the stream between seed and draw.
    fn random_stream() -> std::sync::MutexGuard<'static, ()> {
        static STREAM: std::sync::Mutex<()> = std::sync::Mutex::new(());
        STREAM
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `f` on a copy of `x` (tracked when `track_x`) and the gradients of `(f(x)·g).sum()`:
    /// the output, the input leaf and the gradients.
    fn forward_backward(
        x: &Tensor<4>,
        g: &Tensor<4>,
        track_x: bool,
        f: impl FnOnce(Tensor<4>) -> Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>, burn::tensor::Gradients) {
        let leaf = x.clone().set_require_grad(track_x);
        let y = f(leaf.clone());
        let grads = (y.clone() * g.clone()).sum().backward();
        (y, leaf, grads)
    }

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
        let _stream = random_stream();
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

            let (y1, x1, grads1) = forward_backward(&x, &g, true, |x| burn_bn.forward(x));
            let (y2, x2, grads2) =
                forward_backward(&x, &g, true, |x| batch_norm_train(&ours_bn, x));

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

    fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
        let n = t.shape().num_elements();
        t.reshape([n])
    }

    #[test]
    fn conv3x3_relu_matches_burns_values_and_gradients() {
        let _stream = random_stream();
        use burn::nn::conv::Conv2dConfig;
        let device = crate::device().autodiff();
        device.seed(5);
        // (batch, in, out, side): one input channel (the first layer, no input gradient), the
        // small maps whose input gradient is a forward convolution, and a map above that size.
        for (n, cin, cout, side, x_grad) in [
            (2, 1, 4, 7, false),
            (3, 3, 5, 6, true),
            (2, 4, 3, 3, true),
            (1, 3, 2, 1, true),
            (2, 2, 3, 13, true),
            (2, 3, 4, 24, true),
        ] {
            let conv = Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(&device);
            let x = Tensor::<4>::random(
                [n, cin, side, side],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let g = Tensor::<4>::random(
                [n, cout, side, side],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let (y1, x1, grads1) = forward_backward(&x, &g, x_grad, |x| {
                burn::tensor::activation::relu(conv.forward(x))
            });
            let (y2, x2, grads2) = forward_backward(&x, &g, x_grad, |x| conv3x3_relu(&conv, x));
            let what = format!("{n}x{cin}->{cout} @{side}");
            close(flat(y1), flat(y2), &format!("{what} output"));
            if x_grad {
                close(
                    flat(x1.grad(&grads1).expect("x grad")),
                    flat(x2.grad(&grads2).expect("x grad")),
                    &format!("{what} input gradient"),
                );
            }
            close(
                flat(conv.weight.grad(&grads1).expect("weight grad")),
                flat(conv.weight.grad(&grads2).expect("weight grad")),
                &format!("{what} weight gradient"),
            );
            let bias = conv.bias.as_ref().expect("bias");
            close(
                bias.grad(&grads1).expect("bias grad"),
                bias.grad(&grads2).expect("bias grad"),
                &format!("{what} bias gradient"),
            );
        }
        // Without autodiff (evaluation): the same values.
        let plain = crate::device();
        let conv = Conv2dConfig::new([2, 3], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&plain);
        let x = Tensor::<4>::random([2, 2, 5, 5], Distribution::Normal(0.0, 1.0), &plain);
        close(
            flat(burn::tensor::activation::relu(conv.forward(x.clone()))),
            flat(conv3x3_relu(&conv, x)),
            "plain output",
        );
    }

    #[test]
    fn max_pool_matches_burns_values_and_gradient_routing() {
        let _stream = random_stream();
        use burn::nn::pool::MaxPool2dConfig;
        let device = crate::device().autodiff();
        device.seed(9);
        let pool = MaxPool2dConfig::new([2, 2]).init();
        for shape in [[2, 3, 8, 8], [1, 2, 3, 3], [2, 1, 5, 7], [40, 4, 6, 6]] {
            // After a ReLU: many zeros, so windows tie and the routing rule matters.
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).clamp_min(0.0);
            let out_shape = [shape[0], shape[1], shape[2] / 2, shape[3] / 2];
            let g = Tensor::<4>::random(out_shape, Distribution::Uniform(-1.0, 1.0), &device);
            let (y1, x1, grads1) = forward_backward(&x, &g, true, |x| pool.forward(x));
            let (y2, x2, grads2) = forward_backward(&x, &g, true, |x| max_pool2x2(&pool, x));
            let v = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().expect("f32");
            assert_eq!(v(y1), v(y2), "values {shape:?}");
            let (d1, d2) = (
                v(x1.grad(&grads1).expect("grad")),
                v(x2.grad(&grads2).expect("grad")),
            );
            assert_eq!(d1, d2, "gradients {shape:?}");
            // Each output's gradient lands on exactly one input.
            let routed = d2.iter().filter(|&&d| d != 0.0).count();
            assert_eq!(
                routed,
                out_shape.iter().product::<usize>(),
                "routed {shape:?}"
            );
        }
        let plain = crate::device();
        let x = Tensor::<4>::random([2, 3, 7, 6], Distribution::Normal(0.0, 1.0), &plain);
        let v = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().expect("f32");
        assert_eq!(
            v(pool.forward(x.clone())),
            v(max_pool2x2(&pool, x)),
            "plain values"
        );
    }

    #[test]
    fn dropout_drops_at_the_rate_scales_the_rest_and_routes_the_gradient() {
        let _stream = random_stream();
        let device = crate::device().autodiff();
        let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().expect("f32");
        for p in [0.25, 0.1, 0.5] {
            let layer = DropoutConfig::new(p).init();
            let shape = [8, 16, 12, 12];
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let g = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &device);
            let run = |seed: u64| {
                device.seed(seed);
                let x1 = x.clone().require_grad();
                let y = dropout(&layer, x1.clone());
                let grads = (y.clone() * g.clone()).sum().backward();
                (v(y), v(x1.grad(&grads).expect("grad")))
            };
            let (y, dx) = run(11);
            let scale = (1.0 / (1.0 - p)) as f32;
            let (xs, gs) = (v(x.clone()), v(g.clone()));
            let mut dropped = 0;
            for i in 0..y.len() {
                if y[i] == 0.0 {
                    dropped += 1;
                    assert_eq!(dx[i], 0.0, "gradient of a dropped element, p = {p}");
                } else {
                    // Kept: x·(1/keep) exactly, as burn computes it, and so is the gradient.
                    assert_eq!(y[i], xs[i] * scale, "kept value, p = {p}");
                    assert_eq!(dx[i], gs[i] * scale, "kept gradient, p = {p}");
                }
            }
            let rate = dropped as f64 / y.len() as f64;
            // 18,432 draws: the standard error of the rate is at most 0.004.
            assert!((rate - p).abs() < 0.02, "dropped {rate} for p = {p}");
            assert_eq!(run(11).0, y, "same seed, same mask (p = {p})");
            assert_ne!(run(12).0, y, "another seed, another mask (p = {p})");
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
