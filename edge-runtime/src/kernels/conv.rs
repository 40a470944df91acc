//! 3x3 'same' convolution with the fused output stage and optional 2x2 max pool.

use super::{i32_at, stage_at};

/// Shapes and quantization of one conv call.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub input_zero: i32,
    pub relu: bool,
    pub pool: bool,
}

/// The int32 accumulator of output channel `co` at `(y, x)`: bias plus the 3x3xcin window.
/// Taps outside the image are the real value 0, i.e. `x - zero = 0`: they are skipped.
#[inline]
fn accumulate(
    input: &[i8],
    weights: &[u8],
    bias: i32,
    s: &ConvShape,
    y: usize,
    x: usize,
    co: usize,
) -> i32 {
    let mut acc = bias;
    for ky in 0..3 {
        let iy = y + ky;
        if iy < 1 || iy > s.h {
            continue;
        }
        let iy = iy - 1;
        for kx in 0..3 {
            let ix = x + kx;
            if ix < 1 || ix > s.w {
                continue;
            }
            let ix = ix - 1;
            let px = &input[(iy * s.w + ix) * s.cin..][..s.cin];
            let wk = &weights[((co * 3 + ky) * 3 + kx) * s.cin..][..s.cin];
            for (&v, &w) in px.iter().zip(wk) {
                acc += (i32::from(v) - s.input_zero) * i32::from(w as i8);
            }
        }
    }
    acc
}

/// Runs the layer: `input` is `h × w × cin` int8 (HWC), `output` is `h/2 × w/2 × cout` with
/// `pool`, else `h × w × cout`. `weights` are `[cout][3][3][cin]` int8 bytes, `bias` int32 LE,
/// `stages` one 16-byte output stage per channel. Shapes are validated at model load.
pub fn conv3x3(
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
    for co in 0..s.cout {
        let b = i32_at(bias, co);
        let stage = stage_at(stages, co);
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = i8::MIN;
                for dy in 0..step {
                    for dx in 0..step {
                        let acc =
                            accumulate(input, weights, b, s, oy * step + dy, ox * step + dx, co);
                        let acc = if s.relu { acc.max(0) } else { acc };
                        best = best.max(stage.apply(acc));
                    }
                }
                output[(oy * ow + ox) * s.cout + co] = best;
            }
        }
    }
}
