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
use crate::kernels::taps::{pack_taps, packed_dot};
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
#[inline(never)]
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
        let kernels: [[u32; 5]; BLOCK] = core::array::from_fn(|j| pack_taps(k[j]));
        let (kernels, bias, stages) = (&kernels[..n], &bias[..n], &stages[..n]);
        #[cfg(all(feature = "dsp", target_arch = "arm"))]
        if stem_dsp(
            pixels,
            (h, w),
            (kernels, bias, stages),
            p.relu,
            (first, cout),
            out,
        ) {
            continue;
        }
        stem_windows(pixels, (h, w), cout, out, |window, px| {
            let px = &mut px[first..first + n];
            for (((q, &k), &b), st) in px.iter_mut().zip(kernels).zip(bias).zip(stages) {
                *q = st.output(b + packed_dot(window, k), p.relu);
            }
        });
    }
}

/// Calls `f` with every window of [`stem`] (the nine pixels, 0 outside the frame, packed by
/// `kernels::taps::pack_taps`) and its output pixel's `cout` values in `out`, row by row. The
/// windows with all nine pixels inside are read straight from the frame's rows.
fn stem_windows(
    pixels: &[u8],
    (h, w): (usize, usize),
    cout: usize,
    out: &mut [i8],
    mut f: impl FnMut([u32; 5], &mut [i8]),
) {
    let o = MapShape::stem_output(h, w, cout);
    // The window of output (oy, ox) by definition: the taps outside the frame are 0.
    let border = |oy: usize, ox: usize| {
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
        pack_taps(window)
    };
    // Outputs 1 .. w/2 of a row have all nine taps inside when the row's are.
    let inside = (w / 2).saturating_sub(1);
    for (oy, row) in out.chunks_exact_mut(o.w * cout).enumerate() {
        if oy == 0 || 2 * oy + 1 >= h {
            for (ox, px) in row.chunks_exact_mut(cout).enumerate() {
                f(border(oy, ox), px);
            }
            continue;
        }
        let at = |y: usize| &pixels[y * w + 1..(y + 1) * w];
        let (r0, r1, r2) = (at(2 * oy - 1), at(2 * oy), at(2 * oy + 1));
        let windows = r0
            .windows(3)
            .step_by(2)
            .zip(r1.windows(3).step_by(2))
            .zip(r2.windows(3).step_by(2));
        let mut pxs = row.chunks_exact_mut(cout);
        if let Some(px) = pxs.next() {
            f(border(oy, 0), px);
        }
        // The pixels (0-255) packed straight into `pack_taps`' pairs.
        let pair = |lo: u8, hi: u8| u32::from(lo) | (u32::from(hi) << 16);
        for (px, ((a, b), c)) in pxs.by_ref().zip(windows).take(inside) {
            let window = [
                pair(a[0], a[1]),
                pair(b[0], b[1]),
                pair(c[0], c[1]),
                pair(a[2], b[2]),
                u32::from(c[2]),
            ];
            f(window, px);
        }
        for (ox, px) in pxs.enumerate() {
            f(border(oy, 1 + inside + ox), px);
        }
    }
}

/// [`stem`]'s block of channels `first..first + kernels.len()` on the M7: each window's outputs from
/// five `SMLAD`s per channel and the stage in one loop (`kernels::dsp::window_outputs`). False
/// (nothing done) when a stage's shift is below 32.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn stem_dsp(
    pixels: &[u8],
    (h, w): (usize, usize),
    (kernels, bias, stages): (&[[u32; 5]], &[i32], &[Stage]),
    relu: bool,
    (first, cout): (usize, usize),
    out: &mut [i8],
) -> bool {
    use crate::kernels::dsp::{window_outputs, WindowChannel};
    const BLOCK: usize = 32;
    let n = kernels.len();
    let mut channels = [WindowChannel::default(); BLOCK];
    for j in 0..n {
        let Some(hs) = stages[j].high() else {
            return false;
        };
        channels[j] = WindowChannel::new(kernels[j], bias[j], hs);
    }
    let channels = &channels[..n];
    stem_windows(pixels, (h, w), cout, out, |window, px| {
        if relu {
            window_outputs::<true>(window, channels, &mut px[first..first + n]);
        } else {
            window_outputs::<false>(window, channels, &mut px[first..first + n]);
        }
    });
    true
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
#[inline(never)]
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
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if cout < POINTWISE_FEW && pointwise_few_dsp(input, cin, input_zero, p, out) {
        return;
    }
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
        // On the M7, whole quads go through one kernel call for the block (stages with shifts
        // of at least 32, as the detector's are, and word-aligned weights).
        #[cfg(all(feature = "dsp", target_arch = "arm"))]
        let high = {
            let mut high = [crate::requant::HighStage {
                m: 0,
                shift: 0,
                b: 0,
            }; BLOCK];
            let mut fast = (weights.as_ptr() as usize).is_multiple_of(4);
            for (h, st) in high.iter_mut().zip(stages) {
                match st.high() {
                    Some(st) => *h = st,
                    None => fast = false,
                }
            }
            fast.then_some(high)
        };
        // The block's weights widened once to int16 (on the stack: at most 64 input channels),
        // so the quad loop reads them ready to multiply.
        // Zeroed only when used.
        #[cfg(all(feature = "dsp", target_arch = "arm"))]
        let mut widened: Widened;
        #[cfg(all(feature = "dsp", target_arch = "arm"))]
        let wide = if cin <= WIDE_CIN && pixels >= WIDE_PIXELS {
            widened = Widened([0; 2 * BLOCK * WIDE_CIN]);
            let wide = &mut widened.0[..2 * m * cin];
            crate::kernels::dsp::widen_words(weights, wide);
            Some(&*wide)
        } else {
            None
        };
        let mut first = 0;
        while first < pixels {
            // The last quad repeats its last pixel; those results are not stored.
            let rows: [&[i8]; 4] =
                core::array::from_fn(|r| &input[(first + r).min(pixels - 1) * cin..][..cin]);
            fill_rows(rows, input_zero, patch);
            let n = (pixels - first).min(4);
            let outs = &mut out[first * cout..];
            #[cfg(all(feature = "dsp", target_arch = "arm"))]
            if let (4, Some(high)) = (n, &high) {
                use crate::kernels::dsp::pointwise_quad;
                let (o, hs) = (&mut outs[first_co..], (bias, &high[..m]));
                match (p.relu, wide) {
                    (true, Some(wide)) => {
                        pointwise_quad::<true, true>(patch, wide, cin, hs, o, cout)
                    }
                    (false, Some(wide)) => {
                        pointwise_quad::<false, true>(patch, wide, cin, hs, o, cout)
                    }
                    (true, None) => pointwise_quad::<true, false>(patch, weights, cin, hs, o, cout),
                    (false, None) => {
                        pointwise_quad::<false, false>(patch, weights, cin, hs, o, cout)
                    }
                }
                first += 4;
                continue;
            }
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

/// Below this many output channels (the detector's score heads: 1), [`pointwise`] on the M7
/// takes each pixel's int8 values as they are (`pointwise_few_dsp`) instead of widening four
/// pixels into a patch for so few products.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
const POINTWISE_FEW: usize = 4;

/// [`pointwise`] for a few output channels on the M7: per pixel and channel one `SMLAD` dot
/// product of the raw int8 values and weights (`kernels::dsp::dot`), the zero point's share
/// taken once per channel into its bias. False (nothing done) when a stage's shift is below 32.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn pointwise_few_dsp(
    input: &[i8],
    cin: usize,
    input_zero: i32,
    p: &ConvParams<'_>,
    out: &mut [i8],
) -> bool {
    use crate::kernels::dsp::dot;
    use crate::requant::HighStage;
    let cout = p.bias.len() / 4;
    let mut inner = [0i32; POINTWISE_FEW];
    let mut high = [HighStage {
        m: 0,
        shift: 0,
        b: 0,
    }; POINTWISE_FEW];
    for j in 0..cout {
        let Some(h) = stage_at(p.stages, j).high() else {
            return false;
        };
        high[j] = h;
        let w = &p.weights[j * cin..][..cin];
        inner[j] =
            i32_at(p.bias, j) - input_zero * w.iter().map(|&v| i32::from(v as i8)).sum::<i32>();
    }
    for (x, o) in input.chunks_exact(cin).zip(out.chunks_exact_mut(cout)) {
        for (j, (o, w)) in o.iter_mut().zip(p.weights.chunks_exact(cin)).enumerate() {
            let acc = inner[j] + dot(x, w);
            *o = if p.relu {
                high[j].output::<true>(acc)
            } else {
                high[j].output::<false>(acc)
            };
        }
    }
    true
}

/// The most input channels whose widened weights [`pointwise`] keeps on the stack on the M7
/// (64 channels of a block: 8 KiB).
#[cfg(all(feature = "dsp", target_arch = "arm"))]
const WIDE_CIN: usize = 64;

/// The fewest pixels for which [`pointwise`] widens the weights on the M7 (widening costs about
/// what 64 pixels save).
#[cfg(all(feature = "dsp", target_arch = "arm"))]
const WIDE_PIXELS: usize = 64;

/// Widened weights, word-aligned for `LDRD`.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
#[repr(C, align(8))]
struct Widened([u8; 2 * 64 * WIDE_CIN]);

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
#[inline(never)]
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

/// [`depthwise`] on the M7, channel by channel: the channel's input rows gathered as int16 into a
/// ring of three rows with a column of the zero point on each side (and rows of it above and
/// below the map), so that every output, border included, is `bias − zero·Σw + Σ w·x` over nine
/// taps (a tap on the padding adds `w·zero`, i.e. nothing to `Σ w·(x − zero)`); each output
/// row's sums from the `SMLAD` row kernel (`kernels::dsp::depthwise_row`, the weights packed as
/// int16 pairs for the ring's turn), then the stage into every `c`-th byte. False (nothing done)
/// for maps wider than the kernel's rows or a stage with a shift under 32.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn depthwise_rows_dsp(
    input: &[i8],
    s: MapShape,
    input_zero: i32,
    p: &ConvParams<'_>,
    out: &mut [i8],
) -> bool {
    use crate::kernels::dsp::DW_ROW_BYTES;
    let (h, w) = (s.h, s.w);
    // The row kernel takes columns in pairs: an odd width computes one more, discarded.
    let pairs = w.next_multiple_of(2);
    if h == 0 || w == 0 || 2 * (pairs + 2) > DW_ROW_BYTES {
        return false;
    }
    if !(0..s.c).all(|ch| stage_at(p.stages, ch).high().is_some()) {
        return false;
    }
    if p.relu {
        depthwise_channels::<true>(input, s, input_zero, p, out);
    } else {
        depthwise_channels::<false>(input, s, input_zero, p, out);
    }
    true
}

/// [`depthwise_rows_dsp`]'s work, the ReLU chosen at compile time (every stage has a shift of at
/// least 32 and the rows fit: checked by the caller).
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn depthwise_channels<const RELU: bool>(
    input: &[i8],
    s: MapShape,
    input_zero: i32,
    p: &ConvParams<'_>,
    out: &mut [i8],
) {
    use crate::kernels::dsp::{depthwise_row, gather_i16, stage_strided, DW_ROW_BYTES};
    use crate::kernels::taps::pack_taps;
    let (h, w, c) = (s.h, s.w, s.c);
    let pairs = w.next_multiple_of(2);
    let z = (input_zero as i16).to_le_bytes();
    let mut rows = [0u8; 3 * DW_ROW_BYTES];
    let mut sums = [0i32; DW_ROW_BYTES / 2];
    let n = 2 * (w + 2);
    // The three slots are a ring: input row `i` (−1 ..= h) goes to slot `(i + 1) % 3`, so each
    // output row gathers one new row and moves none. The columns on either side hold the zero
    // point from the start; a row outside the map is the zero point throughout.
    let zero_row = |slot: &mut [u8]| {
        for d in slot[..n].chunks_exact_mut(2) {
            d.copy_from_slice(&z);
        }
    };
    for slot in rows.chunks_exact_mut(DW_ROW_BYTES) {
        zero_row(slot);
    }
    let row_bytes = w * c;
    for ch in 0..c {
        let k: [i32; 9] = core::array::from_fn(|t| i32::from(p.weights[ch * 9 + t] as i8));
        // Output row `y` reads its top input row from slot `y % 3`: slot `s` then holds kernel
        // row `(s − y) mod 3`, so the kernel is packed for each of the three turns of the ring.
        let turns: [[u32; 5]; 3] = core::array::from_fn(|turn| {
            pack_taps(core::array::from_fn(|t| {
                let (slot, col) = (t / 3, t % 3);
                k[(slot + 3 - turn) % 3 * 3 + col]
            }))
        });
        let inner = i32_at(p.bias, ch) - input_zero * k.iter().sum::<i32>();
        let Some(stage) = stage_at(p.stages, ch).high() else {
            continue; // checked by the caller
        };
        let channel = &input[ch..];
        zero_row(&mut rows[..DW_ROW_BYTES]);
        gather_i16(
            channel,
            c,
            &mut rows[DW_ROW_BYTES + 2..DW_ROW_BYTES + n - 2],
        );
        // `top`: the slot of input row y − 1 (= y % 3).
        let mut top = 0;
        for y in 0..h {
            let bottom = if top == 0 { 2 } else { top - 1 };
            let slot = &mut rows[bottom * DW_ROW_BYTES..][..n];
            if y + 1 < h {
                gather_i16(&channel[(y + 1) * row_bytes..], c, &mut slot[2..n - 2]);
            } else {
                zero_row(slot);
            }
            depthwise_row(&rows, turns[top], &mut sums[..pairs]);
            stage_strided::<RELU>(&sums[..w], inner, stage, &mut out[y * row_bytes + ch..], c);
            top = if top == 2 { 0 } else { top + 1 };
        }
    }
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
#[inline(never)]
pub fn max_pool2(input: &[i8], s: MapShape, out: &mut [i8]) {
    let (oh, ow) = (s.h / 2, s.w / 2);
    debug_assert_eq!(out.len(), oh * ow * s.c);
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if s.c.is_multiple_of(4) {
        // Four channels per word: `SSUB8` and `SEL` take four signed maxima at once.
        use crate::kernels::dsp::max_i8x4;
        let (row, c) = (s.w * s.c, s.c);
        let word = |v: &[i8; 4]| u32::from_le_bytes(v.map(|x| x as u8));
        for (oy, o) in out.chunks_exact_mut(ow * c).enumerate() {
            let top = input[2 * oy * row..][..2 * ow * c].as_chunks::<4>().0;
            let bottom = input[(2 * oy + 1) * row..][..2 * ow * c].as_chunks::<4>().0;
            let (o, _) = o.as_chunks_mut::<4>();
            // Each output pixel's `c/4` words from the same words of its two columns in both
            // rows.
            let cw = c / 4;
            let quads = top.chunks_exact(2 * cw).zip(bottom.chunks_exact(2 * cw));
            for (o, (t, b)) in o.chunks_exact_mut(cw).zip(quads) {
                let (t0, t1) = t.split_at(cw);
                let (b0, b1) = b.split_at(cw);
                for ((((o, t0), t1), b0), b1) in o.iter_mut().zip(t0).zip(t1).zip(b0).zip(b1) {
                    let m = max_i8x4(max_i8x4(word(t0), word(t1)), max_i8x4(word(b0), word(b1)));
                    *o = m.to_le_bytes().map(|x| x as i8);
                }
            }
        }
        return;
    }
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
#[inline(never)]
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
#[inline(never)]
pub fn add(a: &[i8], b: &[i8], p: &AddParams, out: &mut [i8]) {
    debug_assert!(a.len() == b.len() && a.len() == out.len());
    let sum =
        |x: i8, y: i8| (i32::from(x) - p.a_zero) * p.a_mul + (i32::from(y) - p.b_zero) * p.b_mul;
    // The stage in its 32-bit form when it has one (the same results, a third of the work on
    // the M7).
    match p.stage.high() {
        Some(high) => {
            // Each input's share `(q − z)·mul` looked up by its byte.
            let share = |zero: i32, mul: i32| -> [i32; 256] {
                core::array::from_fn(|v| (i32::from(v as u8 as i8) - zero) * mul)
            };
            let (sa, sb) = (share(p.a_zero, p.a_mul), share(p.b_zero, p.b_mul));
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = high.apply(sa[usize::from(x as u8)] + sb[usize::from(y as u8)]);
            }
        }
        None => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = p.stage.apply(sum(x, y));
            }
        }
    }
}
