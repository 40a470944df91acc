//! 3x3 'same' convolution with the fused output stage and optional 2x2 max pool.
//!
//! [`conv3x3`] with pooling (every conv of the paper's network) works per pool quad: the quad's
//! input patch is built once ([`super::patch`]), then for each output channel the four
//! accumulators come from one [`super::quad::quad_dot`], and the pool is taken on them. That is
//! exact: the output stage is monotone in the accumulator (non-decreasing when its multiplier
//! is ≥ 0, non-increasing when it is negative, the ReLU before it non-decreasing), so the
//! largest of the four int8 results is the stage of the largest accumulator, or of the smallest
//! one for a negative multiplier — and the stage runs once per pooled value instead of four
//! times. [`conv3x3_reference`] is the straightforward version it is tested against.

use super::dot::{dot, sum};
use super::im2col::fill;
use super::patch::{padded_len, patch_bytes};
use super::quad::{quad_dot, quad_dot_padded, quad_dot_wide};
use super::shape::{pooled_output, ConvShape};
use super::{i32_at, stage_at};

/// The int32 accumulator of one output channel at `(y, x)`: bias plus the 3x3xcin window.
/// `weights` are this channel's `[3][3][cin]`; `zero_share[t]` is `input_zero · Σ_c w[t][c]` for
/// tap `t`. Taps outside the image are the real value 0, i.e. `x - zero = 0`: they are skipped,
/// and for the others `Σ (v − zero)·w = Σ v·w − zero_share`. The taps of one kernel row that lie
/// inside the image are contiguous in both the HWC input and the weights: one dot product each.
#[inline]
fn accumulate(
    input: &[i8],
    weights: &[u8],
    bias: i32,
    zero_share: &[i32; 9],
    s: &ConvShape,
    y: usize,
    x: usize,
) -> i32 {
    // Kernel columns inside the image: kx in kx0..kx1, i.e. input columns x+kx-1.
    let kx0 = usize::from(x == 0);
    let kx1 = if x + 1 >= s.w { 2 } else { 3 };
    let cols = (kx1 - kx0) * s.cin;
    let mut acc = bias;
    for ky in 0..3 {
        let iy = y + ky;
        if iy < 1 || iy > s.h {
            continue;
        }
        let px = &input[((iy - 1) * s.w + x + kx0 - 1) * s.cin..][..cols];
        let wk = &weights[(ky * 3 + kx0) * s.cin..][..cols];
        acc += dot(px, wk) - zero_share[ky * 3 + kx0..ky * 3 + kx1].iter().sum::<i32>();
    }
    acc
}

/// Bytes of scratch [`conv3x3`] needs for a layer with `cin` input channels: when it pools with
/// more than one input channel, one quad's patch plus 3 to start it on a word boundary; none
/// otherwise ([`super::single`] keeps its packed weights on the stack).
pub const fn scratch_bytes(cin: usize, pool: bool) -> usize {
    if pool && cin > 1 {
        patch_bytes(cin) + 3
    } else {
        0
    }
}

/// Runs the layer: `input` is `h × w × cin` int8 (HWC), `output` is `h/2 × w/2 × cout` with
/// `pool`, else `h × w × cout`. `weights` are `[cout][3][3][cin]` int8 bytes, `bias` int32 LE,
/// `stages` one 16-byte output stage per channel; `scratch` holds at least
/// [`scratch_bytes`]. `wide`, when given, holds the same weights pre-widened
/// ([`crate::wide`], for a layer that is [`crate::wide::eligible`], word-aligned): the pooled
/// kernel then reads those. Shapes are validated at model load. Same result as
/// [`conv3x3_reference`].
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(
    input: &[i8],
    weights: &[u8],
    bias: &[u8],
    stages: &[u8],
    s: &ConvShape,
    output: &mut [i8],
    scratch: &mut [i8],
    wide: Option<&[u8]>,
) {
    if !s.pool {
        return conv3x3_reference(input, weights, bias, stages, s, output);
    }
    if s.cin == 1 {
        return super::single::conv3x3(input, weights, bias, stages, s, output);
    }
    #[cfg(target_arch = "aarch64")]
    if super::simd::conv_raw(input, (weights, bias, stages), s, output, scratch) {
        return;
    }
    let taps = 9 * s.cin;
    let kp = padded_len(s.cin);
    debug_assert_eq!(weights.len(), s.cout * taps);
    let (oh, ow) = (s.h / 2, s.w / 2);
    debug_assert_eq!(output.len(), oh * ow * s.cout);
    // Word-aligned, so the `SMLAD` kernel can read it with LDRD.
    let start = scratch.as_ptr().align_offset(4).min(3);
    let patch = &mut scratch[start..start + patch_bytes(s.cin)];
    for oy in 0..oh {
        for ox in 0..ow {
            fill(
                input,
                (s.h, s.w, s.cin),
                s.input_zero,
                (2 * oy, 2 * ox),
                patch,
            );
            let out = &mut output[(oy * ow + ox) * s.cout..][..s.cout];
            #[cfg(target_arch = "x86_64")]
            if wide.is_none()
                && super::simd::quad_channels(patch, s.cin, weights, (bias, stages, s.relu), out)
            {
                continue;
            }
            if let Some(wide) = wide {
                // Each channel's 9·cin widened weights are whole groups of eight (what makes a
                // layer eligible); the patch's padding past them (to 16 on x86-64) is not read.
                debug_assert!(taps.is_multiple_of(8) && wide.len() == 2 * weights.len());
                for ((co, o), w) in out.iter_mut().enumerate().zip(wide.chunks_exact(2 * taps)) {
                    *o = pooled_output(quad_dot_wide(patch, w), bias, stages, co, s.relu);
                }
                continue;
            }
            for (co, o) in out.iter_mut().enumerate() {
                // The patch's values past 9·cin are 0, so the weights that follow a channel's
                // own (the next channel's first ones) add nothing: every channel but the last
                // reads whole groups (the first layer's 9 weights as 16).
                let w = &weights[co * taps..];
                let [a, b, c, d] = if w.len() >= kp {
                    quad_dot_padded(patch, &w[..kp])
                } else {
                    quad_dot(patch, s.cin, w)
                };
                *o = pooled_output([a, b, c, d], bias, stages, co, s.relu);
            }
        }
    }
}

/// The straightforward layer [`conv3x3`] is tested against: per output channel and conv
/// output, one dot product per kernel row with the zero point's share subtracted, the stage on
/// every conv output, the pool on the int8 results.
pub fn conv3x3_reference(
    input: &[i8],
    weights: &[u8],
    bias: &[u8],
    stages: &[u8],
    s: &ConvShape,
    output: &mut [i8],
) {
    debug_assert_eq!(input.len(), s.h * s.w * s.cin);
    debug_assert_eq!(weights.len(), s.cout * 9 * s.cin);
    let step = if s.pool { 2 } else { 1 };
    let (oh, ow) = (s.h / step, s.w / step);
    debug_assert_eq!(output.len(), oh * ow * s.cout);
    let taps = 9 * s.cin;
    for co in 0..s.cout {
        let b = i32_at(bias, co);
        let stage = stage_at(stages, co);
        let wco = &weights[co * taps..][..taps];
        let mut zero_share = [0i32; 9];
        for (t, share) in zero_share.iter_mut().enumerate() {
            *share = s.input_zero * sum(&wco[t * s.cin..][..s.cin]);
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = i8::MIN;
                for dy in 0..step {
                    for dx in 0..step {
                        let (y, x) = (oy * step + dy, ox * step + dx);
                        let acc = accumulate(input, wco, b, &zero_share, s, y, x);
                        best = best.max(stage.output(acc, s.relu));
                    }
                }
                output[(oy * ow + ox) * s.cout + co] = best;
            }
        }
    }
}
