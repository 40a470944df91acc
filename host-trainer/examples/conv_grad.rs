//! Experiment: how a conv layer's backward splits into input and weight gradient on the current
//! backend, and what a weight gradient as one matrix product over an im2col would cost.
//! `cargo run --release -p host-trainer --example conv_grad`

use std::time::Instant;

use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::module::{conv2d, conv_transpose2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};

fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(reps: usize, mut f: impl FnMut() -> (f64, f64)) -> (f64, f64) {
    let (a, b, _) = time3(reps, || {
        let (x, y) = f();
        (x, y, 0.0)
    });
    (a, b)
}

fn time3(reps: usize, mut f: impl FnMut() -> (f64, f64, f64)) -> (f64, f64, f64) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..reps + 2 {
        let (x, y, z) = f();
        if i >= 2 {
            a.push(x);
            b.push(y);
            c.push(z);
        }
    }
    (med(a), med(b), med(c))
}

/// Times `forward` (which builds a tracked output) and the backward of `(y·g).sum()` for a random
/// `g`, in ms.
fn fwd_bwd(ad: &Device, forward: impl FnOnce() -> Tensor<4>) -> (f64, f64) {
    let t = Instant::now();
    let y = forward();
    let _ = ad.sync();
    let f = t.elapsed().as_secs_f64() * 1e3;
    let g = Tensor::<4>::random(y.shape(), Distribution::Uniform(-1.0, 1.0), ad);
    let z = (y * g).sum();
    let t = Instant::now();
    let _gr = z.backward();
    let _ = ad.sync();
    (f, t.elapsed().as_secs_f64() * 1e3)
}

fn cols(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    let p = x.pad((1, 1, 1, 1), 0.0);
    let mut taps = Vec::new();
    for ky in 0..3 {
        for kx in 0..3 {
            taps.push(p.clone().slice([0..b, 0..c, ky..ky + h, kx..kx + w]));
        }
    }
    // [B, C, 9, H, W] -> [B, H, W, C, 9] -> [B*H*W, C*9]
    Tensor::stack::<5>(taps, 2)
        .permute([0, 3, 4, 1, 2])
        .reshape([b * h * w, c * 9])
}

fn main() {
    // As host-trainer itself does (see its allocator module).
    host_trainer::allocator::reuse_freed_buffers();
    let ad = Device::default().autodiff();
    let reps = 10;
    for &(cin, cout, side) in &[
        (1usize, 32usize, 48usize),
        (32, 64, 24),
        (64, 128, 12),
        (128, 128, 6),
        (128, 256, 3),
    ] {
        let b = 40;
        let conv = Conv2dConfig::new([cin, cout], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&ad);
        let shape = [b, cin, side, side];
        let run = |x_grad: bool, w_grad: bool| {
            time(reps, || {
                let x = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &ad)
                    .set_require_grad(x_grad);
                let w = if w_grad {
                    conv.weight.val()
                } else {
                    conv.weight.val().detach()
                };
                fwd_bwd(&ad, || {
                    conv2d(
                        x,
                        w,
                        conv.bias.as_ref().map(|p| p.val()),
                        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
                    )
                })
            })
        };
        let both = run(cin > 1, true);
        let input_only = if cin > 1 {
            run(true, false)
        } else {
            (0.0, 0.0)
        };
        let weight_only = run(false, true);
        // The weight gradient as a matrix product: im2col of the (untracked) input, z = cols·Wᵀ.
        let mm = time(reps, || {
            let x = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &ad).detach();
            let t = Instant::now();
            let c = cols(x);
            let _ = ad.sync();
            let f_cols = t.elapsed().as_secs_f64() * 1e3;
            let wm = conv.weight.val().reshape([cout, cin * 9]);
            let z = c.matmul(wm.transpose());
            let g =
                Tensor::<4>::random([b, cout, side, side], Distribution::Uniform(-1.0, 1.0), &ad);
            let t = Instant::now();
            let gz = g.permute([0, 2, 3, 1]).reshape([b * side * side, cout]);
            let s = (z * gz).sum();
            let _gr = s.backward();
            let _ = ad.sync();
            (f_cols, t.elapsed().as_secs_f64() * 1e3)
        });
        // Plain forwards on the inner backend: conv2d and the transposed conv that burn's input
        // gradient is.
        let dev = Device::default();
        let raw = time3(reps, || {
            let x = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &dev);
            let w = Tensor::<4>::random([cout, cin, 3, 3], Distribution::Uniform(-1.0, 1.0), &dev);
            let g = Tensor::<4>::random(
                [b, cout, side, side],
                Distribution::Uniform(-1.0, 1.0),
                &dev,
            );
            let t = Instant::now();
            let _y = conv2d(
                x,
                w.clone(),
                None,
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            );
            let _ = dev.sync();
            let a = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let _dx = conv_transpose2d(
                g.clone(),
                w.clone(),
                None,
                ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1),
            );
            let _ = dev.sync();
            let b = t.elapsed().as_secs_f64() * 1e3;
            // The same input gradient as a forward convolution with flipped, transposed weights.
            let t = Instant::now();
            let flipped = w.swap_dims(0, 1).flip([2, 3]);
            let _dx = conv2d(
                g,
                flipped,
                None,
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            );
            let _ = dev.sync();
            (a, b, t.elapsed().as_secs_f64() * 1e3)
        });
        println!(
            "  raw conv2d fwd {:.1} ms; input gradient as conv_transpose2d {:.1} ms, as conv2d with flipped weights {:.1} ms",
            raw.0, raw.1, raw.2
        );
        // host-trainer's convolution and ReLU (fast_ops::conv3x3_relu, its own backward on flex),
        // input and weights tracked.
        let ours = time(reps, || {
            let x = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &ad)
                .set_require_grad(cin > 1);
            fwd_bwd(&ad, || host_trainer::fast_ops::conv3x3_relu(&conv, x))
        });
        println!(
            "  fast_ops::conv3x3_relu (conv + ReLU): fwd {:.1} ms, bwd {:.1} ms",
            ours.0, ours.1
        );
        println!(
            "conv {cin}->{cout} @{side}: fwd {:.1} | bwd both {:.1}, input only {:.1}, weight only {:.1} | im2col {:.1} + matmul wgrad bwd (incl. permute of g) {:.1}",
            both.0, both.1, input_only.1, weight_only.1, mm.0, mm.1
        );
    }
}
