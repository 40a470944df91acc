//! The pooled conv layer with one input channel (the network's first layer, on the gray image).
//!
//! The general kernel (`conv3x3` in the `conv` module) would pad each channel's nine weights to a whole group
//! and build a 36-value patch per quad; here a pool quad reads its 4x4 input window once, as
//! int16 pairs `(x − zero)` of neighbouring columns (0 outside the image), and each channel's
//! nine weights are packed once per layer (on the stack, 32 channels at a time) into five
//! int16-pair words: the first two taps of
//! each kernel row, `(w0, w1) (w3, w4) (w6, w7)`, and the third taps `(w2, w5) (w8, 0)`. One
//! conv output is then three pair products (`SMLAD` on the M7) and three halfword products
//! (`SMLAxy`): six instructions for nine multiply-accumulates. The pool and the output stage are
//! taken on the accumulators as in the general kernel. Same result as
//! `conv3x3_reference`, against which the conformance cases check it.

use super::shape::{pooled_output, ConvShape};

/// Words of packed weights per output channel.
const WORDS: usize = 5;

/// Two int16 values as one word, `lo` in the low half.
#[inline(always)]
fn pair(lo: i32, hi: i32) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// `acc + a.lo·b.lo + a.hi·b.hi` on signed halfwords.
#[inline(always)]
fn pair_mac(a: u32, b: u32, acc: i32) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        super::dsp::pair_mac(a, b, acc)
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        acc + half::<false>(a) * half::<false>(b) + half::<true>(a) * half::<true>(b)
    }
}

/// `acc + a.half · b.half`, the halves chosen by `A_TOP` and `B_TOP`.
#[inline(always)]
fn half_mac<const A_TOP: bool, const B_TOP: bool>(a: u32, b: u32, acc: i32) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        super::dsp::smla::<A_TOP, B_TOP>(a, b, acc)
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        acc + half::<A_TOP>(a) * half::<B_TOP>(b)
    }
}

/// The signed low (`TOP` false) or high half of a word.
#[cfg(not(all(feature = "dsp", target_arch = "arm")))]
#[inline(always)]
fn half<const TOP: bool>(x: u32) -> i32 {
    i32::from(if TOP { (x >> 16) as i16 } else { x as i16 })
}

/// The four accumulators of one channel (packed weights `k`) over a quad's window pairs `p`
/// (`p[j][c]` = columns `c` and `c + 1` of window row `j`), in the order of the quad's
/// outputs (0, 0), (0, 1), (1, 0), (1, 1).
#[inline(always)]
fn quad(p: &[[u32; 3]; 4], k: [u32; WORDS]) -> [i32; 4] {
    let [k0, k1, k2, k01, k2s] = k;
    // The third tap of kernel row ky at output column dx is window column dx + 2: the low
    // half of p[..][2] for dx = 0, the high half for dx = 1.
    let left = |dy: usize| {
        let acc = pair_mac(p[dy][0], k0, 0);
        let acc = pair_mac(p[dy + 1][0], k1, acc);
        let acc = pair_mac(p[dy + 2][0], k2, acc);
        let acc = half_mac::<false, false>(k01, p[dy][2], acc);
        let acc = half_mac::<true, false>(k01, p[dy + 1][2], acc);
        half_mac::<false, false>(k2s, p[dy + 2][2], acc)
    };
    let right = |dy: usize| {
        let acc = pair_mac(p[dy][1], k0, 0);
        let acc = pair_mac(p[dy + 1][1], k1, acc);
        let acc = pair_mac(p[dy + 2][1], k2, acc);
        let acc = half_mac::<false, true>(k01, p[dy][2], acc);
        let acc = half_mac::<true, true>(k01, p[dy + 1][2], acc);
        half_mac::<false, true>(k2s, p[dy + 2][2], acc)
    };
    [left(0), right(0), left(1), right(1)]
}

/// Output channels packed at a time (on the stack: 640 bytes).
const BLOCK: usize = 32;

/// The quad's 4x4 input window around pooled output `(oy, ox)`: input rows `2·oy − 1 ..
/// 2·oy + 2`, columns alike, as `x − zero` (0 outside the image).
#[inline(always)]
fn window(input: &[i8], s: &ConvShape, oy: usize, ox: usize) -> [[i32; 4]; 4] {
    let mut win = [[0i32; 4]; 4];
    for (j, row) in win.iter_mut().enumerate() {
        let Some(iy) = (2 * oy + j).checked_sub(1).filter(|&iy| iy < s.h) else {
            continue;
        };
        for (c, v) in row.iter_mut().enumerate() {
            if let Some(ix) = (2 * ox + c).checked_sub(1).filter(|&ix| ix < s.w) {
                *v = i32::from(input[iy * s.w + ix]) - s.input_zero;
            }
        }
    }
    win
}

/// Runs a pooled layer with `s.cin == 1`: arguments as the general `conv3x3` (no scratch).
/// On x86-64 and aarch64 hosts the products run across 32 channels at a time
/// (`kernels::simd::single_block`); elsewhere as described in the module docs.
pub fn conv3x3(
    input: &[i8],
    weights: &[u8],
    bias: &[u8],
    stages: &[u8],
    s: &ConvShape,
    output: &mut [i8],
) {
    debug_assert!(s.cin == 1 && s.pool);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        conv3x3_across_channels(input, weights, bias, stages, s, output)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        conv3x3_pairs(input, weights, bias, stages, s, output)
    }
}

/// The host version: per quad, the nine tap values of each of its four outputs times the nine
/// weights of 32 channels at once, then the pool and the stage per channel.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn conv3x3_across_channels(
    input: &[i8],
    weights: &[u8],
    bias: &[u8],
    stages: &[u8],
    s: &ConvShape,
    output: &mut [i8],
) {
    use super::simd::{single_block, single_pack, SINGLE_BLOCK};
    let (oh, ow) = (s.h / 2, s.w / 2);
    for first in (0..s.cout).step_by(SINGLE_BLOCK) {
        let n = SINGLE_BLOCK.min(s.cout - first);
        let packed = single_pack(&weights[9 * first..9 * (first + n)]);
        for oy in 0..oh {
            for ox in 0..ow {
                let win = window(input, s, oy, ox);
                // Tap t = 3·ky + kx of output (dy, dx) is window value (dy + ky, dx + kx).
                let taps: [[i16; 10]; 4] = core::array::from_fn(|o| {
                    let (dy, dx) = (o / 2, o % 2);
                    core::array::from_fn(|t| {
                        if t < 9 {
                            win[dy + t / 3][dx + t % 3] as i16
                        } else {
                            0
                        }
                    })
                });
                let acc = single_block(&taps, &packed);
                let out = &mut output[(oy * ow + ox) * s.cout + first..][..n];
                for (c, o) in out.iter_mut().enumerate() {
                    let quad = [acc[0][c], acc[1][c], acc[2][c], acc[3][c]];
                    *o = pooled_output(quad, bias, stages, first + c, s.relu);
                }
            }
        }
    }
}

/// The Cortex-M version (and the plain one on targets without SIMD kernels): pair products per
/// channel, as the module docs describe. Public so the conformance cases check it on every
/// target.
pub fn conv3x3_pairs(
    input: &[i8],
    weights: &[u8],
    bias: &[u8],
    stages: &[u8],
    s: &ConvShape,
    output: &mut [i8],
) {
    let (oh, ow) = (s.h / 2, s.w / 2);
    for first in (0..s.cout).step_by(BLOCK) {
        let n = BLOCK.min(s.cout - first);
        let mut packed = [[0u32; WORDS]; BLOCK];
        for (k, w) in packed
            .iter_mut()
            .zip(weights[9 * first..].chunks_exact(9))
            .take(n)
        {
            let w = |t: usize| i32::from(w[t] as i8);
            *k = [
                pair(w(0), w(1)),
                pair(w(3), w(4)),
                pair(w(6), w(7)),
                pair(w(2), w(5)),
                pair(w(8), 0),
            ];
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let win = window(input, s, oy, ox);
                let p = win.map(|r| [pair(r[0], r[1]), pair(r[1], r[2]), pair(r[2], r[3])]);
                let out = &mut output[(oy * ow + ox) * s.cout + first..][..n];
                for (co, (o, &k)) in (first..).zip(out.iter_mut().zip(&packed)) {
                    *o = pooled_output(quad(&p, k), bias, stages, co, s.relu);
                }
            }
        }
    }
}
