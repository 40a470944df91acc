//! The int8 layers of the CNN face detector, HWC, no heap: a 3x3 stride-2 convolution on the
//! gray frame, pointwise (1x1) and depthwise 3x3 convolutions, 2x2 max pool, nearest 2x
//! upsampling and the sum of two maps. Weights are int8 bytes, biases int32 little-endian, one
//! output [`Stage`] per channel (16 bytes, `requant`), as in the expression model's file.
//!
//! Activations are int8 with a zero point (`x = s · (q − z)`); the taps outside a map are the
//! real value 0, i.e. `q − z = 0`, and are skipped. Every sum is exact in i32: a valid file's
//! layers have at most 9·255·128 (stem) or `cin`·255·128 per accumulator.

use crate::kernels::im2col::fill_rows;
use crate::kernels::patch::padded_values;
use crate::kernels::quad::quad_dot_padded;
use crate::kernels::{dense, i32_at, stage_at};
use crate::requant::Stage;

/// A map's height, width and channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapShape {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl MapShape {
    /// Values of the map.
    pub const fn len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Whether the map holds no value.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape after a 3x3 stride-2 convolution with padding 1 to `c` channels.
    pub const fn stem_output(h: usize, w: usize, c: usize) -> MapShape {
        MapShape {
            h: h.div_ceil(2),
            w: w.div_ceil(2),
            c,
        }
    }
}

/// One layer's weights and output stages, as stored in the file.
#[derive(Clone, Copy, Debug)]
pub struct ConvParams<'a> {
    /// `[cout][taps]` int8 bytes (taps: 9 for 3x3, `cin` for 1x1).
    pub weights: &'a [u8],
    /// `cout` int32, little-endian.
    pub bias: &'a [u8],
    /// `cout` output stages of 16 bytes.
    pub stages: &'a [u8],
    pub relu: bool,
}

/// 3x3 convolution, stride 2, padding 1, over the gray frame (`pixels`, `h × w`, values 0-255
/// taken as they are: the input's scale is 1 and its zero point 0) into `out`
/// ([`MapShape::stem_output`], `cout` channels).
pub fn stem(pixels: &[u8], h: usize, w: usize, p: &ConvParams<'_>, out: &mut [i8]) {
    let cout = p.bias.len() / 4;
    let o = MapShape::stem_output(h, w, cout);
    debug_assert_eq!(pixels.len(), h * w);
    debug_assert_eq!(out.len(), o.len());
    // The channels' weights, biases and stages decoded once, 32 channels at a time.
    const BLOCK: usize = 32;
    for first in (0..cout).step_by(BLOCK) {
        let n = (cout - first).min(BLOCK);
        let mut k = [[0i32; 9]; BLOCK];
        let mut bias = [0i32; BLOCK];
        let mut stages = [Stage { m: 0, n: 1, b: 0 }; BLOCK];
        for j in 0..n {
            let co = first + j;
            k[j] = core::array::from_fn(|t| i32::from(p.weights[co * 9 + t] as i8));
            bias[j] = i32_at(p.bias, co);
            stages[j] = stage_at(p.stages, co);
        }
        let (k, bias, stages) = (&k[..n], &bias[..n], &stages[..n]);
        for oy in 0..o.h {
            for ox in 0..o.w {
                let mut window = [0i32; 9];
                for (t, v) in window.iter_mut().enumerate() {
                    let (y, x) = (
                        (2 * oy + t / 3).wrapping_sub(1),
                        (2 * ox + t % 3).wrapping_sub(1),
                    );
                    if y < h && x < w {
                        *v = i32::from(pixels[y * w + x]);
                    }
                }
                let px = &mut out[(oy * o.w + ox) * cout + first..][..n];
                for (((q, k), &b), st) in px.iter_mut().zip(k).zip(bias).zip(stages) {
                    let acc = window.iter().zip(k).fold(b, |a, (&v, &wt)| a + v * wt);
                    *q = st.output(acc, p.relu);
                }
            }
        }
    }
}

/// Bytes of scratch [`pointwise`] needs for `cin` input channels.
pub const fn pointwise_scratch(cin: usize) -> usize {
    let quad = 4 * 2 * padded_values(cin) + 3;
    let dense = dense::scratch_bytes(cin);
    if quad > dense {
        quad
    } else {
        dense
    }
}

/// 1x1 convolution of every pixel of `input` (`pixels × cin`, zero point `input_zero`) into
/// `out` (`pixels × cout`). `scratch` holds [`pointwise_scratch`]`(cin)` bytes.
///
/// When `cin` fills whole groups of a patch row (a multiple of 16), four pixels at a time: their
/// `x − z` values laid out as the four rows of a conv patch (`kernels::patch`), and each output
/// channel's four accumulators from one quad product (`quad_dot_padded`: `SMLAD` on the M7,
/// SSE2 / AVX2 / NEON on hosts), its bias and stage read once for the four. Otherwise each pixel
/// is one dense layer ([`pointwise_reference`]). Same results either way.
pub fn pointwise(
    input: &[i8],
    cin: usize,
    input_zero: i32,
    p: &ConvParams<'_>,
    out: &mut [i8],
    scratch: &mut [i8],
) {
    let cout = p.bias.len() / 4;
    debug_assert_eq!(p.weights.len(), cin * cout);
    if cin == 0 || !cin.is_multiple_of(16) || padded_values(cin) != cin {
        return pointwise_reference(input, cin, input_zero, p, out, scratch);
    }
    let pixels = input.len() / cin;
    // Word-aligned, so the SMLAD kernel can read it with LDRD.
    let start = scratch.as_ptr().align_offset(4).min(3);
    let patch = &mut scratch[start..start + 4 * 2 * cin];
    // Biases and stages decoded once per block of output channels.
    const BLOCK: usize = 64;
    for first_co in (0..cout).step_by(BLOCK) {
        let m = (cout - first_co).min(BLOCK);
        let mut bias = [0i32; BLOCK];
        let mut stages = [Stage { m: 0, n: 1, b: 0 }; BLOCK];
        for j in 0..m {
            bias[j] = i32_at(p.bias, first_co + j);
            stages[j] = stage_at(p.stages, first_co + j);
        }
        let (bias, stages) = (&bias[..m], &stages[..m]);
        let weights = &p.weights[first_co * cin..(first_co + m) * cin];
        let mut first = 0;
        while first < pixels {
            // The last quad repeats its last pixel; those results are not stored.
            let rows: [&[i8]; 4] =
                core::array::from_fn(|r| &input[(first + r).min(pixels - 1) * cin..][..cin]);
            fill_rows(rows, input_zero, patch);
            let n = (pixels - first).min(4);
            let outs = &mut out[first * cout..];
            for (j, ((w, &b), st)) in weights.chunks_exact(cin).zip(bias).zip(stages).enumerate() {
                let acc = quad_dot_padded(patch, w);
                for (r, a) in acc.iter().enumerate().take(n) {
                    outs[r * cout + first_co + j] = st.output(b + a, p.relu);
                }
            }
            first += 4;
        }
    }
}

/// The per-pixel pointwise convolution: each pixel one dense layer (the expression model's
/// dense kernel, with its fast versions).
pub fn pointwise_reference(
    input: &[i8],
    cin: usize,
    input_zero: i32,
    p: &ConvParams<'_>,
    out: &mut [i8],
    scratch: &mut [i8],
) {
    let cout = p.bias.len() / 4;
    for (x, o) in input.chunks_exact(cin).zip(out.chunks_exact_mut(cout)) {
        dense::dense(
            x, p.weights, p.bias, p.stages, input_zero, p.relu, o, scratch,
        );
    }
}

/// The most channels [`depthwise`] takes pixel by pixel with its weights transposed on the
/// stack (more, or maps under 3x3, go through [`depthwise_reference`]).
pub const DEPTHWISE_CHANNELS: usize = 128;

/// 3x3 depthwise convolution, stride 1, padding 1: channel `c` of `out` from channel `c` of
/// `input` (shape `s`, zero point `input_zero`) with its nine weights. The pixels whose nine
/// taps are all inside take `bias − zero·Σw + Σ w·x`: with at most [`DEPTHWISE_CHANNELS`]
/// channels pixel by pixel, the nine input pixels and the weights (transposed once to
/// `[tap][channel]`) as slices of exactly `c` values, so the channel loop runs without bounds
/// checks; the border pixels skip the taps outside as [`depthwise_reference`] does, whose
/// results these are. On the M7 (`dsp`), the `SMLAD` row kernel instead.
pub fn depthwise(input: &[i8], s: MapShape, input_zero: i32, p: &ConvParams<'_>, out: &mut [i8]) {
    debug_assert_eq!(input.len(), s.len());
    debug_assert_eq!(out.len(), s.len());
    debug_assert_eq!(p.weights.len(), 9 * s.c);
    let (h, w, c) = (s.h, s.w, s.c);
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if depthwise_rows_dsp(input, s, input_zero, p, out) {
        return;
    }
    if c > DEPTHWISE_CHANNELS || h < 3 || w < 3 {
        return depthwise_reference(input, s, input_zero, p, out);
    }
    let mut wt = [0i8; 9 * DEPTHWISE_CHANNELS];
    let mut inner = [0i32; DEPTHWISE_CHANNELS];
    let mut stages = [Stage { m: 0, n: 1, b: 0 }; DEPTHWISE_CHANNELS];
    for ch in 0..c {
        stages[ch] = stage_at(p.stages, ch);
        let k = &p.weights[ch * 9..][..9];
        for (t, &v) in k.iter().enumerate() {
            wt[t * c + ch] = v as i8;
        }
        let sum: i32 = k.iter().map(|&v| i32::from(v as i8)).sum();
        inner[ch] = i32_at(p.bias, ch) - input_zero * sum;
    }
    let (inner, stages) = (&inner[..c], &stages[..c]);
    let row = w * c;
    for y in 1..h - 1 {
        let rows = [
            &input[(y - 1) * row..y * row],
            &input[y * row..(y + 1) * row],
            &input[(y + 1) * row..(y + 2) * row],
        ];
        for x in 1..w - 1 {
            let tap = |t: usize| &rows[t / 3][(x + t % 3 - 1) * c..][..c];
            let taps: [&[i8]; 9] = core::array::from_fn(tap);
            let k: [&[i8]; 9] = core::array::from_fn(|t| &wt[t * c..][..c]);
            let o = &mut out[(y * w + x) * c..][..c];
            for ch in 0..c {
                let mut acc = inner[ch];
                for t in 0..9 {
                    acc += i32::from(k[t][ch]) * i32::from(taps[t][ch]);
                }
                o[ch] = stages[ch].output(acc, p.relu);
            }
        }
    }
    // The border: first and last rows, first and last columns.
    for y in 0..h {
        let all = y == 0 || y + 1 == h;
        for x in (0..w).filter(|&x| all || x == 0 || x + 1 == w) {
            for ch in 0..c {
                out[(y * w + x) * c + ch] = depthwise_pixel(input, s, input_zero, p, (y, x, ch));
            }
        }
    }
}

/// [`depthwise`] on the M7, channel by channel: the channel's three input rows gathered as
/// int16 with a column of the zero point on each side (and rows of it above and below the map),
/// so that every output, border included, is `bias − zero·Σw + Σ w·x` over nine taps (a tap on
/// the padding adds `w·zero`, i.e. nothing to `Σ w·(x − zero)`); each output row's sums from the
/// `SMLAD` row kernel (`kernels::dsp::depthwise_row`, the weights packed as int16 pairs), then
/// the stage. False (nothing done) for maps wider than the kernel's rows.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn depthwise_rows_dsp(
    input: &[i8],
    s: MapShape,
    input_zero: i32,
    p: &ConvParams<'_>,
    out: &mut [i8],
) -> bool {
    use crate::kernels::dsp::{depthwise_row, DW_ROW_BYTES};
    let (h, w, c) = (s.h, s.w, s.c);
    if h == 0 || w == 0 || 2 * (w + 2) > DW_ROW_BYTES {
        return false;
    }
    let z = (input_zero as i16).to_le_bytes();
    let mut rows = [0u8; 3 * DW_ROW_BYTES];
    let mut sums = [0i32; DW_ROW_BYTES / 2];
    let pack = |lo: i32, hi: i32| (lo as u16 as u32) | ((hi as u16 as u32) << 16);
    // Input row `y` of channel `ch` into `slot` (the zero point outside the map).
    let gather = |y: Option<usize>, ch: usize, slot: usize, rows: &mut [u8; 3 * DW_ROW_BYTES]| {
        let dst = &mut rows[slot * DW_ROW_BYTES..][..2 * (w + 2)];
        match y.filter(|&y| y < h) {
            Some(y) => {
                dst[..2].copy_from_slice(&z);
                dst[2 * (w + 1)..].copy_from_slice(&z);
                let src = &input[y * w * c..(y + 1) * w * c];
                for (d, px) in dst[2..2 * (w + 1)]
                    .chunks_exact_mut(2)
                    .zip(src.chunks_exact(c))
                {
                    d.copy_from_slice(&i16::from(px[ch]).to_le_bytes());
                }
            }
            None => {
                for d in dst.chunks_exact_mut(2) {
                    d.copy_from_slice(&z);
                }
            }
        }
    };
    for ch in 0..c {
        let k: [i32; 9] = core::array::from_fn(|t| i32::from(p.weights[ch * 9 + t] as i8));
        let packed = [
            pack(k[0], k[1]),
            pack(k[3], k[4]),
            pack(k[6], k[7]),
            pack(k[2], k[5]),
            pack(k[8], 0),
        ];
        let inner = i32_at(p.bias, ch) - input_zero * k.iter().sum::<i32>();
        let stage = stage_at(p.stages, ch);
        gather(None, ch, 0, &mut rows);
        gather(Some(0), ch, 1, &mut rows);
        for y in 0..h {
            gather(Some(y + 1), ch, 2, &mut rows);
            let sums = &mut sums[..w];
            depthwise_row(&rows, packed, inner, sums);
            let o = &mut out[y * w * c..(y + 1) * w * c];
            for (x, &acc) in sums.iter().enumerate() {
                o[x * c + ch] = stage.output(acc, p.relu);
            }
            let n = 2 * (w + 2);
            rows.copy_within(DW_ROW_BYTES..DW_ROW_BYTES + n, 0);
            rows.copy_within(2 * DW_ROW_BYTES..2 * DW_ROW_BYTES + n, DW_ROW_BYTES);
        }
    }
    true
}

/// The plain depthwise convolution [`depthwise`] is tested against: per pixel and channel, the
/// nine taps with the ones outside the map skipped.
pub fn depthwise_reference(
    input: &[i8],
    s: MapShape,
    input_zero: i32,
    p: &ConvParams<'_>,
    out: &mut [i8],
) {
    for y in 0..s.h {
        for x in 0..s.w {
            for ch in 0..s.c {
                out[(y * s.w + x) * s.c + ch] =
                    depthwise_pixel(input, s, input_zero, p, (y, x, ch));
            }
        }
    }
}

/// One depthwise output, by definition: channel `ch` at `(y, x)`, the nine taps with the ones
/// outside the map skipped (`x − zero` of the real value 0 is 0).
fn depthwise_pixel(
    input: &[i8],
    s: MapShape,
    input_zero: i32,
    p: &ConvParams<'_>,
    (y, x, ch): (usize, usize, usize),
) -> i8 {
    let mut acc = i32_at(p.bias, ch);
    for (t, &wt) in p.weights[ch * 9..][..9].iter().enumerate() {
        let (iy, ix) = ((y + t / 3).wrapping_sub(1), (x + t % 3).wrapping_sub(1));
        if iy < s.h && ix < s.w {
            let v = i32::from(input[(iy * s.w + ix) * s.c + ch]) - input_zero;
            acc += v * i32::from(wt as i8);
        }
    }
    stage_at(p.stages, ch).output(acc, p.relu)
}

/// 2x2 max pool, stride 2, of `input` (shape `s`; an odd last row or column is dropped) into
/// `out` (`h/2 × w/2 × c`). The int8 values keep the input's scale and zero point.
pub fn max_pool2(input: &[i8], s: MapShape, out: &mut [i8]) {
    let (oh, ow) = (s.h / 2, s.w / 2);
    debug_assert_eq!(out.len(), oh * ow * s.c);
    for oy in 0..oh {
        for ox in 0..ow {
            let at =
                |dy: usize, dx: usize| &input[((2 * oy + dy) * s.w + 2 * ox + dx) * s.c..][..s.c];
            let (a, b, c, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
            let o = &mut out[(oy * ow + ox) * s.c..][..s.c];
            for (k, v) in o.iter_mut().enumerate() {
                *v = a[k].max(b[k]).max(c[k].max(d[k]));
            }
        }
    }
}

/// Nearest-neighbour 2x upsampling of `input` (shape `s`) into `out` (`2h × 2w × c`).
pub fn upsample2(input: &[i8], s: MapShape, out: &mut [i8]) {
    debug_assert_eq!(out.len(), 4 * s.len());
    let row = 2 * s.w * s.c;
    for y in 0..s.h {
        let (top, bottom) = out[2 * y * row..(2 * y + 2) * row].split_at_mut(row);
        for x in 0..s.w {
            let src = &input[(y * s.w + x) * s.c..][..s.c];
            top[2 * x * s.c..][..s.c].copy_from_slice(src);
            top[(2 * x + 1) * s.c..][..s.c].copy_from_slice(src);
        }
        bottom.copy_from_slice(top);
    }
}

/// How two int8 maps of one shape are added: `q = stage((a − za)·ma + (b − zb)·mb)` with `ma`,
/// `mb` the inputs' scales in a common fixed point and `stage` taking that fixed point to the
/// output's scale, with its rounding and zero point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddParams {
    pub a_zero: i32,
    pub b_zero: i32,
    /// At most 2^15 in magnitude, so every sum is below 2^25.
    pub a_mul: i32,
    pub b_mul: i32,
    pub stage: Stage,
}

/// The largest [`AddParams::a_mul`] / [`AddParams::b_mul`] magnitude a valid file holds.
pub const ADD_MUL_MAX: i32 = 1 << 15;

/// `out = a + b` in real values (see [`AddParams`]).
pub fn add(a: &[i8], b: &[i8], p: &AddParams, out: &mut [i8]) {
    debug_assert!(a.len() == b.len() && a.len() == out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let acc = (i32::from(x) - p.a_zero) * p.a_mul + (i32::from(y) - p.b_zero) * p.b_mul;
        *o = p.stage.apply(acc);
    }
}
