//! Plain loops over contiguous `f32` buffers for the parts of host-trainer's training step on
//! burn's flex backend that burn 0.22 runs through generic code: the im2col that turns a 3x3
//! 'same' convolution's weight gradient into one matrix product, ReLU, the 2x2 max pool (forward
//! and gradient routing), BatchNorm's forward and backward, and dropout masks. Each runs on all
//! cores (rayon); the tests compare them with direct definitions.

use rayon::prelude::*;

/// Which of a 2x2 window's four inputs (0..4, row-major) is its maximum.
pub type Winner = u8;

/// 2x2 max pooling with stride 2 over `planes` planes of `h x w` (odd sides are floored, like
/// burn's and PyTorch's default). Returns the pooled planes and, per output, the window position
/// that won: the first maximum in row-major order, except that a NaN always wins (the rule of
/// burn's flex backend and of PyTorch), so the gradient goes where theirs goes.
pub fn max_pool2x2(x: &[f32], planes: usize, h: usize, w: usize) -> (Vec<f32>, Vec<Winner>) {
    assert_eq!(x.len(), planes * h * w, "max_pool2x2: input length");
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0f32; planes * oh * ow];
    let mut winners = vec![0 as Winner; planes * oh * ow];
    if oh * ow == 0 {
        return (out, winners);
    }
    out.par_chunks_mut(oh * ow)
        .zip(winners.par_chunks_mut(oh * ow))
        .zip(x.par_chunks(h * w))
        .for_each(|((out, winners), plane)| {
            for oy in 0..oh {
                let top = &plane[2 * oy * w..2 * oy * w + w];
                let bottom = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + w];
                let out = &mut out[oy * ow..(oy + 1) * ow];
                let winners = &mut winners[oy * ow..(oy + 1) * ow];
                let mut nan = false;
                // No branch depends on the data (the winner of a window of activations is
                // random; a mispredicted branch costs more than the window), so this vectorizes:
                // the maximum, then the first position that holds it.
                for ox in 0..ow {
                    let (a, b) = (top[2 * ox], top[2 * ox + 1]);
                    let (c, d) = (bottom[2 * ox], bottom[2 * ox + 1]);
                    let max = a.max(b).max(c.max(d));
                    let (not_a, not_b, not_c) =
                        ((a != max) as u8, (b != max) as u8, (c != max) as u8);
                    out[ox] = max;
                    winners[ox] = not_a * (1 + not_b * (1 + not_c));
                    nan |= a.is_nan() | b.is_nan() | c.is_nan() | d.is_nan();
                }
                if nan {
                    // A NaN wins its window (the last NaN, as in burn and PyTorch).
                    for ox in 0..ow {
                        let window = [
                            top[2 * ox],
                            top[2 * ox + 1],
                            bottom[2 * ox],
                            bottom[2 * ox + 1],
                        ];
                        if let Some(k) = window.iter().rposition(|v| v.is_nan()) {
                            out[ox] = window[k];
                            winners[ox] = k as Winner;
                        }
                    }
                }
            }
        });
    (out, winners)
}

/// The input gradient of [`max_pool2x2`]: each output's gradient goes to the input that won its
/// window, every other input (and a floored odd last row or column) gets zero.
pub fn max_pool2x2_backward(
    grad: &[f32],
    winners: &[Winner],
    planes: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(
        grad.len(),
        planes * oh * ow,
        "max_pool2x2_backward: gradient length"
    );
    assert_eq!(
        winners.len(),
        grad.len(),
        "max_pool2x2_backward: winners length"
    );
    let mut dx = vec![0f32; planes * h * w];
    if oh * ow == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w)
        .zip(grad.par_chunks(oh * ow))
        .zip(winners.par_chunks(oh * ow))
        .for_each(|((plane, grad), winners)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let k = winners[oy * ow + ox] as usize;
                    let (y, x) = (2 * oy + k / 2, 2 * ox + k % 2);
                    plane[y * w + x] = grad[oy * ow + ox];
                }
            }
        });
    dx
}

/// im2col of a 3x3 convolution with padding 1 and stride 1, one row per weight: for the `batch`
/// images of `cin` planes of `h x w`, a `[cin * 9, batch * h * w]` matrix whose row
/// `ci * 9 + ky * 3 + kx` holds, at column `(b, y, x)`, input `(b, ci, y + ky − 1, x + kx − 1)`
/// (zero outside the plane): each row is the batch's planes `ci`, shifted. The convolution's
/// weight gradient is then one matrix product, `grad [cout, batch·h·w] · colsᵀ`, whose inner
/// dimension is the whole batch.
pub fn im2col3x3(x: &[f32], batch: usize, cin: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(x.len(), batch * cin * h * w, "im2col3x3: input length");
    let hw = h * w;
    let mut cols = vec![0f32; cin * 9 * batch * hw];
    if hw == 0 || batch == 0 {
        return cols;
    }
    cols.par_chunks_mut(batch * hw)
        .enumerate()
        .for_each(|(row, taps)| {
            let (ci, k) = (row / 9, row % 9);
            let (dy, dx) = (k / 3, k % 3);
            // Output column x reads input column x + dx − 1: columns x0..x1 exist.
            let (x0, x1) = (1usize.saturating_sub(dx), (w + 1 - dx).min(w));
            if x0 >= x1 {
                return;
            }
            for (b, tap) in taps.chunks_mut(hw).enumerate() {
                let plane = &x[(b * cin + ci) * hw..(b * cin + ci + 1) * hw];
                for y in 0..h {
                    // Output row y reads input row y + dy − 1.
                    let Some(sy) = (y + dy).checked_sub(1).filter(|&sy| sy < h) else {
                        continue;
                    };
                    let src = &plane[sy * w + x0 + dx - 1..sy * w + x1 + dx - 1];
                    tap[y * w + x0..y * w + x1].copy_from_slice(src);
                }
            }
        });
    cols
}

/// ReLU in place, burn's rule: every value `<= 0` becomes 0 (a NaN stays NaN).
pub fn relu_in_place(values: &mut [f32]) {
    values.par_chunks_mut(1 << 14).for_each(|chunk| {
        for v in chunk {
            // A select, not a branch, so that the loop vectorizes.
            *v = if *v <= 0.0 { 0.0 } else { *v };
        }
    });
}

/// ReLU's backward in place on the gradient `grad`, from the ReLU's output: zero where the output
/// is `<= 0` (burn's rule), unchanged elsewhere.
pub fn relu_backward_in_place(grad: &mut [f32], output: &[f32]) {
    assert_eq!(grad.len(), output.len(), "relu_backward_in_place: lengths");
    grad.par_chunks_mut(1 << 14)
        .zip(output.par_chunks(1 << 14))
        .for_each(|(grad, output)| {
            for (g, &y) in grad.iter_mut().zip(output) {
                *g = if y <= 0.0 { 0.0 } else { *g };
            }
        });
}

/// Elements per chunk of [`dropout_mask`]: each chunk has its own generator state, so the mask
/// depends on the seed only, not on how many threads draw it.
const MASK_CHUNK: usize = 1 << 14;

/// A dropout mask of `len` elements: `1 / keep` with probability `keep`, else 0. Each chunk of
/// `MASK_CHUNK` elements runs SplitMix64 from `seed` and the chunk's index; an element is kept
/// when the top 32 bits of its draw fall below `keep · 2³²`.
pub fn dropout_mask(len: usize, keep: f64, seed: u64) -> Vec<f32> {
    let scale = (1.0 / keep) as f32;
    let threshold = (keep.clamp(0.0, 1.0) * 4_294_967_296.0) as u64;
    let mut mask = vec![0f32; len];
    mask.par_chunks_mut(MASK_CHUNK)
        .enumerate()
        .for_each(|(chunk, mask)| {
            let mut state = seed ^ (chunk as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
            for m in mask {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                *m = if (z >> 32) < threshold { scale } else { 0.0 };
            }
        });
    mask
}

/// Training BatchNorm's forward on `[n, c, hw]`: per channel, the batch mean and biased
/// variance (accumulated in `f64`), and `y = (x − mean) · gamma / √(var + eps) + beta`.
/// Returns `(y, mean, variance)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward(
    x: &[f32],
    n: usize,
    c: usize,
    hw: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), n * c * hw, "batch_norm_forward: input length");
    assert!(
        gamma.len() == c && beta.len() == c,
        "batch_norm_forward: gamma/beta length"
    );
    let count = (n * hw) as f64;
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum, mut squares) = (0f64, 0f64);
            for b in 0..n {
                let plane = &x[(b * c + ch) * hw..(b * c + ch + 1) * hw];
                let (s, q) = plane
                    .iter()
                    .fold((0f32, 0f32), |(s, q), &v| (s + v, q + v * v));
                sum += s as f64;
                squares += q as f64;
            }
            let mean = sum / count;
            let variance = (squares / count - mean * mean).max(0.0);
            (mean as f32, variance as f32)
        })
        .collect();
    let (mean, variance): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    let mut y = vec![0f32; x.len()];
    if hw > 0 {
        y.par_chunks_mut(hw)
            .zip(x.par_chunks(hw))
            .enumerate()
            .for_each(|(plane, (y, x))| {
                let ch = plane % c;
                let scale = gamma[ch] / (variance[ch] as f64 + eps).sqrt() as f32;
                let shift = beta[ch] - mean[ch] * scale;
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = x * scale + shift;
                }
            });
    }
    (y, mean, variance)
}

/// Training BatchNorm's backward on `[n, c, hw]` for output gradient `g`, from the forward's
/// batch `mean` and `variance`: with `x̂ = (x − mean)/√(var + eps)` and `m = n·hw`,
/// `dβ = Σ g`, `dγ = Σ g·x̂` and `dx = γ/√(var + eps) · (g − dβ/m − x̂·dγ/m)`.
/// Returns `(dx, dgamma, dbeta)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],
    g: &[f32],
    n: usize,
    c: usize,
    hw: usize,
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), n * c * hw, "batch_norm_backward: input length");
    assert_eq!(g.len(), x.len(), "batch_norm_backward: gradient length");
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    let sums: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum_g, mut sum_gx) = (0f64, 0f64);
            for b in 0..n {
                let at = (b * c + ch) * hw..(b * c + ch + 1) * hw;
                let (s, sx) = x[at.clone()]
                    .iter()
                    .zip(&g[at])
                    .fold((0f32, 0f32), |(s, sx), (&x, &g)| {
                        (s + g, sx + g * (x - mean[ch]))
                    });
                sum_g += s as f64;
                sum_gx += sx as f64;
            }
            (sum_g as f32, (sum_gx * inv_std[ch] as f64) as f32)
        })
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let count = (n * hw) as f32;
    let mut dx = vec![0f32; x.len()];
    if hw > 0 {
        dx.par_chunks_mut(hw)
            .zip(x.par_chunks(hw).zip(g.par_chunks(hw)))
            .enumerate()
            .for_each(|(plane, (dx, (x, g)))| {
                let ch = plane % c;
                let k = gamma[ch] * inv_std[ch];
                let g_mean = dbeta[ch] / count;
                let gx_mean = dgamma[ch] / count;
                for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
                    let x_hat = (x - mean[ch]) * inv_std[ch];
                    *dx = k * (g - g_mean - x_hat * gx_mean);
                }
            });
    }
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible mix of values with ties (many zeros, as after a ReLU) and a NaN.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let v = (s % 2001) as f32 / 1000.0 - 1.0;
                if s.is_multiple_of(7) {
                    0.0
                } else {
                    v.max(0.0)
                }
            })
            .collect()
    }

    #[test]
    fn max_pool_picks_the_first_maximum_and_routes_the_gradient_there() {
        for (planes, h, w) in [(3, 4, 4), (2, 5, 7), (4, 3, 3), (1, 1, 1), (2, 6, 2)] {
            let mut x = values(planes * h * w, 17 + h as u32);
            if x.len() > 5 {
                x[5] = f32::NAN;
            }
            let (out, win) = max_pool2x2(&x, planes, h, w);
            let (oh, ow) = (h / 2, w / 2);
            let grad: Vec<f32> = (0..out.len()).map(|i| i as f32 + 1.0).collect();
            let dx = max_pool2x2_backward(&grad, &win, planes, h, w);
            let mut expected_dx = vec![0f32; x.len()];
            for p in 0..planes {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut best = None::<(usize, f32)>;
                        for (ky, kx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            let i = p * h * w + (2 * oy + ky) * w + 2 * ox + kx;
                            let v = x[i];
                            if best.is_none_or(|(_, b)| v > b || v.is_nan()) {
                                best = Some((i, v));
                            }
                        }
                        let (i, v) = best.expect("a window");
                        let o = p * oh * ow + oy * ow + ox;
                        assert!(
                            out[o] == v || (out[o].is_nan() && v.is_nan()),
                            "plane {p} ({oy},{ox}): {} vs {v}",
                            out[o]
                        );
                        expected_dx[i] = grad[o];
                    }
                }
            }
            assert_eq!(dx, expected_dx, "gradient routing for {planes}x{h}x{w}");
        }
    }

    #[test]
    fn dropout_mask_keeps_at_the_rate_and_depends_on_the_seed_only() {
        let len = 3 * MASK_CHUNK + 123;
        for keep in [0.75, 0.9, 0.5] {
            let mask = dropout_mask(len, keep, 42);
            let scale = (1.0 / keep) as f32;
            assert!(mask.iter().all(|&m| m == 0.0 || m == scale), "values");
            let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / len as f64;
            assert!((kept - keep).abs() < 0.01, "kept {kept} for {keep}");
            // The same on one thread as on the pool, and different for another seed.
            let single = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("pool")
                .install(|| dropout_mask(len, keep, 42));
            assert_eq!(single, mask);
            assert_ne!(dropout_mask(len, keep, 43), mask);
            // Chunks are not copies of each other.
            assert_ne!(mask[..MASK_CHUNK], mask[MASK_CHUNK..2 * MASK_CHUNK]);
        }
    }

    #[test]
    fn im2col_rows_are_the_shifted_planes() {
        for (batch, cin, h, w) in [(2, 3, 5, 4), (1, 1, 1, 1), (3, 2, 2, 6)] {
            let x: Vec<f32> = (0..batch * cin * h * w).map(|i| i as f32 + 1.0).collect();
            let cols = im2col3x3(&x, batch, cin, h, w);
            for b in 0..batch {
                for ci in 0..cin {
                    for k in 0..9 {
                        for y in 0..h {
                            for xx in 0..w {
                                let (sy, sx) = (
                                    y as isize + (k / 3) as isize - 1,
                                    xx as isize + (k % 3) as isize - 1,
                                );
                                let expected =
                                    if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                        0.0
                                    } else {
                                        x[((b * cin + ci) * h + sy as usize) * w + sx as usize]
                                    };
                                let got = cols[(ci * 9 + k) * batch * h * w + (b * h + y) * w + xx];
                                assert_eq!(got, expected, "b{b} c{ci} tap{k} ({y},{xx})");
                            }
                        }
                    }
                }
            }
        }
    }
}
