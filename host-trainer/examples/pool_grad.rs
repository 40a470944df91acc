//! Experiment: burn's 2x2 max pool against a reshape + two max_dim formulation and against
//! host-trainer's (`fast_ops::max_pool2x2`, a direct loop on flex), forward and backward, at the
//! shapes of the network's pools (batch 40).
//! `cargo run -p host-trainer --example pool_grad`

use std::time::Instant;

use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::{Device, Distribution, Tensor};

fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn reshaped(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h / 2, 2, w / 2, 2])
        .max_dim(5)
        .max_dim(3)
        .reshape([n, c, h / 2, w / 2])
}

fn main() {
    // As host-trainer itself does (see its allocator module).
    host_trainer::allocator::reuse_freed_buffers();
    // The kernel alone, on a plain buffer (no tensors, no autodiff).
    for &(c, side) in &[(32usize, 48usize), (64, 24)] {
        let planes = 40 * c;
        let x: Vec<f32> = (0..planes * side * side)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let mut f = Vec::new();
        for _ in 0..12 {
            let t = Instant::now();
            let r = host_trainer::fast_ops::kernels::max_pool2x2(&x, planes, side, side);
            f.push(t.elapsed().as_secs_f64() * 1e3);
            drop(r);
        }
        println!(
            "pool {c} @{side}: kernels::max_pool2x2 alone: {:.2} ms",
            med(f)
        );
        let plain = Device::default();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let mut f = Vec::new();
        for _ in 0..12 {
            let x = Tensor::<4>::random(
                [40, c, side, side],
                Distribution::Uniform(-1.0, 1.0),
                &plain,
            );
            let _ = x.to_data();
            let t = Instant::now();
            let y = host_trainer::fast_ops::max_pool2x2(&pool, x);
            let _ = plain.sync();
            f.push(t.elapsed().as_secs_f64() * 1e3);
            drop(y);
        }
        println!(
            "pool {c} @{side}: fast_ops::max_pool2x2 without autodiff: {:.2} ms",
            med(f)
        );
    }
    let ad = Device::default().autodiff();
    let pool = MaxPool2dConfig::new([2, 2]).init();
    for &(c, side) in &[(32usize, 48usize), (64, 24), (128, 12), (128, 6)] {
        let shape = [40, c, side, side];
        for (name, which) in [
            ("burn max_pool2d", 0),
            ("reshape + max_dim", 1),
            ("fast_ops::max_pool2x2", 2),
        ] {
            let (mut f, mut b) = (Vec::new(), Vec::new());
            for _ in 0..12 {
                let x = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &ad)
                    .require_grad();
                let t = Instant::now();
                let y = match which {
                    0 => pool.forward(x),
                    1 => reshaped(x),
                    _ => host_trainer::fast_ops::max_pool2x2(&pool, x),
                };
                let _ = ad.sync();
                f.push(t.elapsed().as_secs_f64() * 1e3);
                let g = Tensor::<4>::random(y.shape(), Distribution::Uniform(-1.0, 1.0), &ad);
                let s = (y * g).sum();
                let t = Instant::now();
                let _gr = s.backward();
                let _ = ad.sync();
                b.push(t.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "pool {c} @{side}: {name}: fwd {:.1} ms, bwd {:.1} ms",
                med(f),
                med(b)
            );
        }
    }
}
