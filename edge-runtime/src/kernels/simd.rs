//! The host dot product on 16 bytes at a time: SSE2 `PMADDWD` on x86-64, NEON `SMULL` +
//! `SADALP` on aarch64 (the Raspberry Pi). Both instruction sets are part of their target's
//! baseline, so no run-time detection is needed. Integer-exact, so the result is the same as
//! [`super::reference::dot_reference`] bit for bit: tested against it in `crate::tests` (on x86-64, and
//! under qemu-aarch64 by `.ci/run`) and by edge-cli's aarch64 test (golden logits).
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadl_epi64, _mm_loadu_si128, _mm_madd_epi16,
    _mm_set1_epi32, _mm_setzero_si128, _mm_shuffle_epi32, _mm_srai_epi16, _mm_storeu_si128,
    _mm_unpackhi_epi8, _mm_unpacklo_epi8,
};

#[cfg(target_arch = "aarch64")]
use core::arch::aarch64::{
    int32x4_t, int8x16_t, vaddvq_s32, vceqq_u8, vdupq_n_s32, vdupq_n_s8, vdupq_n_u8, vget_low_s16,
    vget_low_s8, vld1_s8, vld1q_s16, vld1q_s8, vld1q_u8, vmaxvq_u8, vmlal_high_laneq_s16,
    vmlal_high_n_s16, vmlal_high_s16, vmlal_high_s8, vmlal_laneq_s16, vmlal_n_s16, vmlal_s16,
    vmovl_s8, vmull_high_s8, vmull_s8, vorrq_u8, vpadalq_s16, vreinterpretq_s16_s8, vst1q_s32,
};

/// Same result as [`super::reference::dot_reference`]: `Σ a[i] · (b[i] as i8)`. Whole 16-byte blocks
/// go through [`blocks`]; the tail through the plain loop.
#[inline]
pub fn dot(a: &[i8], b: &[u8]) -> i32 {
    let b = &b[..a.len()];
    let (xs, x_rest) = a.as_chunks::<16>();
    let (ws, w_rest) = b.as_chunks::<16>();
    blocks(xs, ws) + super::reference::dot_reference(x_rest, w_rest)
}

/// `Σ x·w` over paired 16-byte blocks, with SSE2.
#[cfg(target_arch = "x86_64")]
#[inline]
fn blocks(xs: &[[i8; 16]], ws: &[[u8; 16]]) -> i32 {
    // SAFETY: SSE2 is part of the x86-64 baseline, so every intrinsic below exists on the CPU.
    // The two loads read exactly the 16 bytes of one `[_; 16]` block (unaligned loads allow
    // any address). The rest is register arithmetic: int8 lanes are sign-extended to int16
    // (unpack with themselves, arithmetic shift right by 8), `PMADDWD` adds pairs of int16
    // products into int32 lanes (each product ≤ 2^14 in magnitude, so it cannot overflow), and
    // the lanes are summed at the end.
    unsafe {
        let mut acc = _mm_setzero_si128();
        for (x, w) in xs.iter().zip(ws) {
            let x = _mm_loadu_si128(x.as_ptr().cast::<__m128i>());
            let w = _mm_loadu_si128(w.as_ptr().cast::<__m128i>());
            let x_lo = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(x, x));
            let x_hi = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(x, x));
            let w_lo = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(w, w));
            let w_hi = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(w, w));
            acc = _mm_add_epi32(acc, _mm_madd_epi16(x_lo, w_lo));
            acc = _mm_add_epi32(acc, _mm_madd_epi16(x_hi, w_hi));
        }
        let acc = _mm_add_epi32(acc, _mm_shuffle_epi32::<0b01_00_11_10>(acc));
        let acc = _mm_add_epi32(acc, _mm_shuffle_epi32::<0b10_11_00_01>(acc));
        _mm_cvtsi128_si32(acc)
    }
}

/// `Σ x·w` over paired 16-byte blocks, with NEON.
#[cfg(target_arch = "aarch64")]
#[inline]
fn blocks(xs: &[[i8; 16]], ws: &[[u8; 16]]) -> i32 {
    // SAFETY: NEON is part of the aarch64 baseline, so every intrinsic below exists on the CPU.
    // The two loads read exactly the 16 bytes of one `[_; 16]` block (`LD1` has no alignment
    // requirement; the weight bytes are read as the int8 values they store). The rest is
    // register arithmetic: `SMULL` gives exact int16 products of int8 lanes (≤ 2^14 in
    // magnitude), `SADALP` adds their pairs into int32 lanes, `ADDV` sums the lanes.
    unsafe {
        let mut acc = vdupq_n_s32(0);
        for (x, w) in xs.iter().zip(ws) {
            let x = vld1q_s8(x.as_ptr());
            let w = vld1q_s8(w.as_ptr().cast::<i8>());
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(w)));
            acc = vpadalq_s16(acc, vmull_high_s8(x, w));
        }
        vaddvq_s32(acc)
    }
}

/// The four rows' products with the weights `w` (a multiple of 16: the first `w.len()` values of
/// each row) for a patch in the x86-64 layout ([`super::patch`]: groups of 16 values per row in
/// order, the four rows' groups one after the other, 128 bytes a group): 16 weights at a time are
/// widened to int16 once and multiplied with the matching values of each row — with AVX2 when
/// the CPU has it, else SSE2.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn quad_dot(patch: &[i8], w: &[u8]) -> [i32; 4] {
    if has_avx2() {
        // SAFETY: the CPU has AVX2 (detected at run time).
        return unsafe { quad_dot_avx2(patch, w) };
    }
    quad_dot_sse2(patch, w)
}

/// Whether the CPU has AVX2: detected once at run time with `std` (the host tools, the tests);
/// without it, only when the build targets AVX2.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(any(test, feature = "std"))]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(any(test, feature = "std")))]
    {
        cfg!(target_feature = "avx2")
    }
}

/// The pooled outputs of one quad for all its channels — the pooled conv kernel's inner loop —
/// with AVX2 when the CPU has it (one call per quad, the quad products inlined); returns false,
/// doing nothing, when it does not. Arguments as `conv3x3`'s: `weights` `[cout][9·cin]`, `out`
/// one int8 per channel.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn quad_channels(
    patch: &[i8],
    cin: usize,
    weights: &[u8],
    (bias, stages, relu): (&[u8], &[u8], bool),
    out: &mut [i8],
) -> bool {
    if !has_avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2 (detected at run time just above).
    unsafe { quad_channels_avx2(patch, cin, weights, (bias, stages, relu), out) };
    true
}

/// [`quad_channels`]' AVX2 loop.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quad_channels_avx2(
    patch: &[i8],
    cin: usize,
    weights: &[u8],
    (bias, stages, relu): (&[u8], &[u8], bool),
    out: &mut [i8],
) {
    let taps = 9 * cin;
    let kp = super::patch::padded_len(cin);
    for (co, o) in out.iter_mut().enumerate() {
        // As in conv3x3: all channels but the last read whole groups (the patch is 0 past
        // 9·cin); the last one takes the exact-length path.
        let w = &weights[co * taps..];
        let acc = if w.len() >= kp {
            // SAFETY: the CPU has AVX2 (this function's contract).
            unsafe { quad_dot_avx2(patch, &w[..kp]) }
        } else {
            super::reference::quad_dot_exact(patch, cin, w, quad_dot)
        };
        *o = super::shape::pooled_output(acc, bias, stages, co, relu);
    }
}

/// [`quad_dot`] with AVX2: per group of 16 values the weights are sign-extended by one
/// `VPMOVSXBW`, then each row's 16 values (one 32-byte load) go through one `VPMADDWD`: one
/// shuffle-port instruction per 64 multiply-accumulates.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn quad_dot_avx2(patch: &[i8], w: &[u8]) -> [i32; 4] {
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16,
        _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_setzero_si256, _mm_add_epi32, _mm_storeu_si128,
    };
    let (ws, _) = w.as_chunks::<16>();
    let (groups, _) = patch.as_chunks::<128>();
    // SAFETY: AVX2 is guaranteed by the caller. `_mm_loadu_si128` reads exactly the 16 bytes of
    // one `[u8; 16]`, each `_mm256_loadu_si256` 32 of the 128 bytes of one `[i8; 128]`, the
    // store the 16 bytes of `out`; unaligned loads and stores allow any address. `VPMADDWD`
    // adds pairs of exact int16 products (no overflow, see `quad_dot_sse2`).
    unsafe {
        let mut acc = [_mm256_setzero_si256(); 4];
        for (w, g) in ws.iter().zip(groups) {
            let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.as_ptr().cast::<__m128i>()));
            for (r, a) in acc.iter_mut().enumerate() {
                let row = _mm256_loadu_si256(g.as_ptr().add(32 * r).cast::<__m256i>());
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(row, w));
            }
        }
        // Pairwise sums within each 128-bit half: [r0 r0 r1 r1 | r0 r0 r1 r1], [r2 r2 r3 r3 |
        // …], then [r0 r1 r2 r3 | r0 r1 r2 r3]; the two halves added give the four sums.
        let h01 = _mm256_hadd_epi32(acc[0], acc[1]);
        let h23 = _mm256_hadd_epi32(acc[2], acc[3]);
        let h = _mm256_hadd_epi32(h01, h23);
        let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
        let mut out = [0i32; 4];
        _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), sums);
        out
    }
}

/// [`quad_dot`] with SSE2 (the x86-64 baseline): per group of 16 values the weights are widened
/// once (two halves of eight), then multiplied with each row's two halves by `PMADDWD`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn quad_dot_sse2(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let (ws, _) = w.as_chunks::<16>();
    let (groups, _) = patch.as_chunks::<128>();
    // SAFETY: SSE2 is part of the x86-64 baseline. `_mm_loadu_si128` reads exactly the 16 bytes
    // of one `[u8; 16]`, and each row load 16 of the 128 bytes of one `[i8; 128]` (unaligned
    // loads allow any address). The rest is register arithmetic: weights are sign-extended to
    // int16 (unpack with themselves, shift right by 8); `PMADDWD` adds pairs of int16 products
    // (|x − z| ≤ 255 times |w| ≤ 128: no overflow) into int32 lanes, summed at the end.
    unsafe {
        let mut acc = [_mm_setzero_si128(); 4];
        for (w, g) in ws.iter().zip(groups) {
            let w = _mm_loadu_si128(w.as_ptr().cast::<__m128i>());
            let lo = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(w, w));
            let hi = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(w, w));
            for (r, a) in acc.iter_mut().enumerate() {
                let row = g.as_ptr().add(32 * r);
                let p0 = _mm_loadu_si128(row.cast::<__m128i>());
                let p1 = _mm_loadu_si128(row.add(16).cast::<__m128i>());
                *a = _mm_add_epi32(*a, _mm_madd_epi16(p0, lo));
                *a = _mm_add_epi32(*a, _mm_madd_epi16(p1, hi));
            }
        }
        acc.map(|a| {
            let a = _mm_add_epi32(a, _mm_shuffle_epi32::<0b01_00_11_10>(a));
            let a = _mm_add_epi32(a, _mm_shuffle_epi32::<0b10_11_00_01>(a));
            _mm_cvtsi128_si32(a)
        })
    }
}

/// As the SSE2 version, with NEON: eight weights widened once (`SXTL`), then `SMLAL`/`SMLAL2`
/// with each row's eight values.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn quad_dot(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let (ws, _) = w.as_chunks::<8>();
    let (groups, _) = patch.as_chunks::<64>();
    // SAFETY: NEON is part of the aarch64 baseline. `vld1_s8` reads exactly the 8 bytes of one
    // `[u8; 8]` (as the int8 weights they store) and each `vld1q_s8` 16 of the 64 bytes of one
    // `[i8; 64]`, reinterpreted as eight little-endian int16 (LD1 has no alignment
    // requirement). `SMLAL` accumulates exact int32 products of int16 lanes (no overflow, see
    // the x86-64 version).
    unsafe {
        let mut acc = [vdupq_n_s32(0); 4];
        for (w, g) in ws.iter().zip(groups) {
            let w = vmovl_s8(vld1_s8(w.as_ptr().cast::<i8>()));
            for (r, a) in acc.iter_mut().enumerate() {
                let p = vreinterpretq_s16_s8(vld1q_s8(g.as_ptr().add(16 * r)));
                *a = vmlal_high_s16(vmlal_s16(*a, vget_low_s16(p), vget_low_s16(w)), p, w);
            }
        }
        acc.map(|a| vaddvq_s32(a))
    }
}

/// `Σ x[i] · w[i]` of int16 values `x` (little-endian bytes, in order, at least `2·w.len()`) and
/// int8 weights `w`: eight weights widened at a time with SSE2 and multiplied with eight values
/// by `PMADDWD`; the tail in the plain loop. Same result as
/// [`super::reference::row_dot_reference`].
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn row_dot16(x: &[i8], w: &[u8]) -> i32 {
    let (ws, w_rest) = w.as_chunks::<8>();
    let (xs, _) = x[..2 * w.len()].as_chunks::<16>();
    // SAFETY: SSE2 is part of the x86-64 baseline. `_mm_loadl_epi64` reads exactly the 8 bytes
    // of one `[u8; 8]` and `_mm_loadu_si128` the 16 of one `[i8; 16]` (unaligned loads allow any
    // address). `PMADDWD` adds pairs of exact int16 products (|x| ≤ 255, |w| ≤ 128) into int32
    // lanes, summed at the end; a valid model's sums fit in i32 (checked at load).
    let body = unsafe {
        let mut acc = _mm_setzero_si128();
        for (w, x) in ws.iter().zip(xs) {
            let w = _mm_loadl_epi64(w.as_ptr().cast::<__m128i>());
            let w = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(w, w));
            let x = _mm_loadu_si128(x.as_ptr().cast::<__m128i>());
            acc = _mm_add_epi32(acc, _mm_madd_epi16(x, w));
        }
        let acc = _mm_add_epi32(acc, _mm_shuffle_epi32::<0b01_00_11_10>(acc));
        let acc = _mm_add_epi32(acc, _mm_shuffle_epi32::<0b10_11_00_01>(acc));
        _mm_cvtsi128_si32(acc)
    };
    let done = 8 * ws.len();
    body + super::reference::row_dot_reference(&x[2 * done..], w_rest)
}

/// As the SSE2 version, with NEON: eight weights widened (`SXTL`), then `SMLAL`/`SMLAL2` with
/// eight values.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn row_dot16(x: &[i8], w: &[u8]) -> i32 {
    let (ws, w_rest) = w.as_chunks::<8>();
    let (xs, _) = x[..2 * w.len()].as_chunks::<16>();
    // SAFETY: NEON is part of the aarch64 baseline. `vld1_s8` reads exactly the 8 bytes of one
    // `[u8; 8]` (as the int8 weights they store) and `vld1q_s8` the 16 of one `[i8; 16]`,
    // reinterpreted as eight little-endian int16 (LD1 has no alignment requirement). `SMLAL`
    // accumulates exact int32 products (a valid model's sums fit in i32, checked at load).
    let body = unsafe {
        let mut acc = vdupq_n_s32(0);
        for (w, x) in ws.iter().zip(xs) {
            let w = vmovl_s8(vld1_s8(w.as_ptr().cast::<i8>()));
            let x = vreinterpretq_s16_s8(vld1q_s8(x.as_ptr()));
            acc = vmlal_high_s16(vmlal_s16(acc, vget_low_s16(x), vget_low_s16(w)), x, w);
        }
        vaddvq_s32(acc)
    };
    let done = 8 * ws.len();
    body + super::reference::row_dot_reference(&x[2 * done..], w_rest)
}

/// Output channels of the one-input-channel layer computed at a time ([`single_block`]).
pub const SINGLE_BLOCK: usize = 32;

/// The nine weights of up to [`SINGLE_BLOCK`] channels (`w`: nine int8 bytes per channel) as
/// int16, laid out for [`single_block`]; missing channels are 0. x86-64: for each tap pair
/// `(2j, 2j + 1)` (tap 9 is 0), the channels' pairs one after the other; aarch64: tap by tap.
#[inline]
pub fn single_pack(w: &[u8]) -> [i16; 10 * SINGLE_BLOCK] {
    let mut out = [0i16; 10 * SINGLE_BLOCK];
    for (c, k) in w.chunks_exact(9).take(SINGLE_BLOCK).enumerate() {
        for (t, &v) in k.iter().enumerate() {
            let at = if cfg!(target_arch = "x86_64") {
                (t / 2) * 2 * SINGLE_BLOCK + 2 * c + t % 2
            } else {
                t * SINGLE_BLOCK + c
            };
            out[at] = i16::from(v as i8);
        }
    }
    out
}

/// For each of a quad's four outputs `o` (its nine tap values `x[o][..9]`, `x[o][9]` = 0) the
/// accumulators `Σ_t x[o][t] · w[t][c]` of the [`SINGLE_BLOCK`] channels `c` packed in `w`:
/// `PMADDWD` of a broadcast tap pair with four channels' weight pairs, five per four channels.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn single_block(x: &[[i16; 10]; 4], w: &[i16; 10 * SINGLE_BLOCK]) -> [[i32; SINGLE_BLOCK]; 4] {
    let mut acc = [[0i32; SINGLE_BLOCK]; 4];
    // SAFETY: SSE2 is part of the x86-64 baseline. Each `_mm_loadu_si128` reads 8 int16 at
    // `j·64 + 8·v` of the 320 in `w` (j < 5, v < 8: at most offset 311), each store writes the
    // 4 int32 at `4·v` of one 32-lane row of `acc` (v < 8); unaligned loads and stores allow any
    // address. `PMADDWD` adds two exact int16 products (|x| ≤ 255, |w| ≤ 128) per lane.
    unsafe {
        for (o, row) in acc.iter_mut().enumerate() {
            let pair = |j: usize| {
                _mm_set1_epi32(i32::from(x[o][2 * j] as u16) | i32::from(x[o][2 * j + 1]) << 16)
            };
            let b = [pair(0), pair(1), pair(2), pair(3), pair(4)];
            for v in 0..SINGLE_BLOCK / 4 {
                let mut a = _mm_setzero_si128();
                for (j, b) in b.iter().enumerate() {
                    let wv = _mm_loadu_si128(
                        w.as_ptr()
                            .add(j * 2 * SINGLE_BLOCK + 8 * v)
                            .cast::<__m128i>(),
                    );
                    a = _mm_add_epi32(a, _mm_madd_epi16(*b, wv));
                }
                _mm_storeu_si128(row.as_mut_ptr().add(4 * v).cast::<__m128i>(), a);
            }
        }
    }
    acc
}

/// As the SSE2 version, with NEON: per tap and eight channels one `SMLAL` and one `SMLAL2` by a
/// lane of the output's tap vector.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn single_block(x: &[[i16; 10]; 4], w: &[i16; 10 * SINGLE_BLOCK]) -> [[i32; SINGLE_BLOCK]; 4] {
    let mut acc = [[0i32; SINGLE_BLOCK]; 4];
    // SAFETY: NEON is part of the aarch64 baseline. `vld1q_s16` reads the first 8 of the 10
    // int16 of `x[o]`, and 8 int16 at `t·32 + 8·v` of the 320 in `w` (t < 9, v < 4: at most
    // offset 287); each `vst1q_s32` writes 4 int32 at `8·v` or `8·v + 4` of one 32-lane row of
    // `acc`. LD1/ST1 have no alignment requirement. `SMLAL` accumulates exact int32 products.
    unsafe {
        for (o, row) in acc.iter_mut().enumerate() {
            let xv = vld1q_s16(x[o].as_ptr());
            let x8 = x[o][8];
            for v in 0..SINGLE_BLOCK / 8 {
                let wt = |t: usize| vld1q_s16(w.as_ptr().add(t * SINGLE_BLOCK + 8 * v));
                let (mut lo, mut hi) = (vdupq_n_s32(0), vdupq_n_s32(0));
                macro_rules! tap {
                    ($t:literal) => {
                        let wv = wt($t);
                        lo = vmlal_laneq_s16::<$t>(lo, vget_low_s16(wv), xv);
                        hi = vmlal_high_laneq_s16::<$t>(hi, wv, xv);
                    };
                }
                tap!(0);
                tap!(1);
                tap!(2);
                tap!(3);
                tap!(4);
                tap!(5);
                tap!(6);
                tap!(7);
                let wv = wt(8);
                lo = vmlal_n_s16(lo, vget_low_s16(wv), x8);
                hi = vmlal_high_n_s16(hi, wv, x8);
                vst1q_s32(row.as_mut_ptr().add(8 * v), lo);
                vst1q_s32(row.as_mut_ptr().add(8 * v + 4), hi);
            }
        }
    }
    acc
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::cases::Cases;
    use super::super::im2col::fill;
    use super::super::patch::{padded_len, patch_bytes};
    use super::super::reference::quad_dot_reference;

    /// Both x86-64 quad kernels against the plain one, whichever of them `quad_dot` picks on
    /// this CPU: random maps and weights at the extremes too, every channel count 1-130.
    #[test]
    fn sse2_and_avx2_quad_kernels_are_the_reference() {
        let mut cases = Cases::new();
        for cin in 1..=130usize {
            let mut raw = vec![0u8; 16 * cin];
            cases.fill(&mut raw, false);
            let input: Vec<i8> = raw.iter().map(|&b| b as i8).collect();
            let mut w = vec![0u8; padded_len(cin)];
            cases.fill(&mut w, cin % 5 == 0);
            if cin % 3 == 0 {
                w.iter_mut().for_each(|v| *v = 0x80);
            }
            let mut patch = vec![0i8; patch_bytes(cin)];
            fill(&input, (4, 4, cin), -128, (1, 1), &mut patch);
            // Weights past 9·cin meet the patch's zeros.
            let want = quad_dot_reference(&patch, cin, &w);
            assert_eq!(super::quad_dot_sse2(&patch, &w), want, "SSE2, cin {cin}");
            if super::has_avx2() {
                // SAFETY: the CPU has AVX2 (checked just above).
                let got = unsafe { super::quad_dot_avx2(&patch, &w) };
                assert_eq!(got, want, "AVX2, cin {cin}");
            }
        }
    }
}

/// Whether the CPU has the Armv8.2 dot product (`SDOT`): detected at run time with `std` (the
/// host tools, the tests); without it, only when the build targets it.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn has_dotprod() -> bool {
    #[cfg(any(test, feature = "std"))]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(any(test, feature = "std")))]
    {
        cfg!(target_feature = "dotprod")
    }
}

/// A pooled conv layer (more than one input channel) on raw int8 patches; returns false,
/// doing nothing, when neither way below applies (then the int16 kernels run). Arguments as
/// the pooled conv kernel's (`conv3x3`).
///
/// Per quad, the raw int8 patch ([`super::patch::fill_raw`]: taps outside the image hold the
/// zero point `z`), then per channel and row the products of 16 values at a time, and
/// `Σ (x − z)·w = Σ x·w − z·Σ w` with `z·Σ w` computed once per layer and channel. Exact: every
/// term fits in i32 for a valid model (the validator bounds `255 · Σ|w|`).
/// - `SDOT` (Armv8.2 dot product: Pi 5's Cortex-A76 has it, Pi 4's A72 does not), chosen at
///   run time: 16 products into four int32 lanes per instruction.
/// - Otherwise, when no weight of the layer is −128 (the quantizer's weights are in −127..127):
///   `SMULL` + `SMLAL2` add two int8 products into each int16 lane (|x·w| ≤ 128·127, so two fit
///   in int16), `SADALP` widens the pairs into int32 lanes: 16 products in 3 instructions.
#[cfg(target_arch = "aarch64")]
pub fn conv_raw(
    input: &[i8],
    (weights, bias, stages): (&[u8], &[u8], &[u8]),
    s: &super::shape::ConvShape,
    output: &mut [i8],
    scratch: &mut [i8],
) -> bool {
    let layer = (weights, bias, stages);
    if has_dotprod() {
        // SAFETY: the CPU has the dot-product extension (detected at run time just above).
        unsafe { conv_raw_dotprod(input, layer, s, output, scratch) };
        return true;
    }
    if has_min_int8(weights) {
        return false;
    }
    raw_layer::<false>(input, layer, s, output, scratch);
    true
}

/// Whether any byte of `bytes` is −128 (0x80), 16 bytes per compare.
#[cfg(target_arch = "aarch64")]
fn has_min_int8(bytes: &[u8]) -> bool {
    let (blocks, rest) = bytes.as_chunks::<16>();
    // SAFETY: NEON is part of the aarch64 baseline; each `vld1q_u8` reads exactly the 16 bytes
    // of one `[u8; 16]` (no alignment requirement); the rest is register arithmetic.
    let found = unsafe {
        let min = vdupq_n_u8(0x80);
        let mut any = vdupq_n_u8(0);
        for b in blocks {
            any = vorrq_u8(any, vceqq_u8(vld1q_u8(b.as_ptr()), min));
        }
        vmaxvq_u8(any) != 0
    };
    found || rest.contains(&0x80)
}

/// [`conv_raw`] with `SDOT`.
///
/// # Safety
/// The CPU must have the dot-product extension.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "dotprod")]
unsafe fn conv_raw_dotprod(
    input: &[i8],
    layer: (&[u8], &[u8], &[u8]),
    s: &super::shape::ConvShape,
    output: &mut [i8],
    scratch: &mut [i8],
) {
    raw_layer::<true>(input, layer, s, output, scratch);
}

/// `acc += a · b` by groups of four int8 products per int32 lane (`SDOT`).
#[cfg(target_arch = "aarch64")]
macro_rules! sdot {
    ($acc:expr, $a:expr, $b:expr) => {{
        let mut r: int32x4_t = $acc;
        core::arch::asm!(
            "sdot {r:v}.4s, {a:v}.16b, {b:v}.16b",
            r = inout(vreg) r,
            a = in(vreg) $a,
            b = in(vreg) $b,
            options(pure, nomem, nostack, preserves_flags),
        );
        r
    }};
}

/// `acc + Σ a[i]·b[i]` over 16 int8 lanes into four int32 lanes: `SDOT` when `SDOT` (the caller
/// has the dot-product extension), else `SMULL`/`SMLAL2`/`SADALP` (no −128 in `b`).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn dot16<const SDOT: bool>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: register arithmetic only; `SDOT` is emitted only for `SDOT = true`, whose callers
    // run with the dot-product extension (`conv_raw_dotprod`).
    unsafe {
        if SDOT {
            sdot!(acc, a, b)
        } else {
            let pairs = vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
            vpadalq_s16(acc, pairs)
        }
    }
}

/// [`conv_raw`]'s body for either way of multiplying.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn raw_layer<const SDOT: bool>(
    input: &[i8],
    (weights, bias, stages): (&[u8], &[u8], &[u8]),
    s: &super::shape::ConvShape,
    output: &mut [i8],
    scratch: &mut [i8],
) {
    /// Channels whose `z·Σ w` are kept at a time (on the stack).
    const CHANNELS: usize = 256;
    let taps = 9 * s.cin;
    let chunks = taps / 16;
    let (oh, ow) = (s.h / 2, s.w / 2);
    let patch = &mut scratch[..4 * taps];
    let plain = |x: &[i8], w: &[u8]| -> i32 {
        x.iter()
            .zip(w)
            .map(|(&x, &w)| i32::from(x) * i32::from(w as i8))
            .sum()
    };
    // SAFETY: NEON is part of the aarch64 baseline (and `dot16::<true>` runs only where the
    // caller has the dot-product extension, see `conv_raw`). Every `vld1q_s8` reads 16 bytes at
    // `16·k` (k < taps / 16) of a channel's `taps` weights or of a patch row's `taps` values:
    // all in bounds (LD1 has no alignment requirement). The sums are exact (see `conv_raw`).
    unsafe {
        let ones = vdupq_n_s8(1);
        for first in (0..s.cout).step_by(CHANNELS) {
            let n = CHANNELS.min(s.cout - first);
            let mut share = [0i32; CHANNELS];
            for (c, sh) in share.iter_mut().take(n).enumerate() {
                let w = &weights[(first + c) * taps..][..taps];
                let mut acc = vdupq_n_s32(0);
                for k in 0..chunks {
                    let wv = vld1q_s8(w.as_ptr().add(16 * k).cast::<i8>());
                    acc = dot16::<SDOT>(acc, ones, wv);
                }
                let tail: i32 = w[16 * chunks..].iter().map(|&v| i32::from(v as i8)).sum();
                *sh = s.input_zero * (vaddvq_s32(acc) + tail);
            }
            for oy in 0..oh {
                for ox in 0..ow {
                    super::im2col::fill_raw(
                        input,
                        (s.h, s.w, s.cin),
                        s.input_zero,
                        (2 * oy, 2 * ox),
                        taps,
                        patch,
                    );
                    let out = &mut output[(oy * ow + ox) * s.cout + first..][..n];
                    let p = patch.as_ptr();
                    let row = |r: usize, k: usize| vld1q_s8(p.add(r * taps + 16 * k));
                    // Channel c's four pooled-quad sums from its accumulators: lanes added, the
                    // zero point's share taken off, the values past the last 16 added plainly.
                    let finish = |c: usize, acc: [int32x4_t; 4]| -> i8 {
                        let co = first + c;
                        let mut sums = acc.map(|a| vaddvq_s32(a) - share[c]);
                        if 16 * chunks < taps {
                            let w = &weights[co * taps..][..taps];
                            for (r, sum) in sums.iter_mut().enumerate() {
                                let x = &patch[r * taps..(r + 1) * taps];
                                *sum += plain(&x[16 * chunks..], &w[16 * chunks..]);
                            }
                        }
                        super::shape::pooled_output(sums, bias, stages, co, s.relu)
                    };
                    let z = vdupq_n_s32(0);
                    // Two channels at a time share each row load; named accumulators (an array
                    // of them is kept in memory).
                    let mut c = 0;
                    while c + 1 < n {
                        let w0 = weights[(first + c) * taps..][..taps].as_ptr().cast::<i8>();
                        let w1 = weights[(first + c + 1) * taps..][..taps]
                            .as_ptr()
                            .cast::<i8>();
                        let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
                        let (mut b0, mut b1, mut b2, mut b3) = (z, z, z, z);
                        for k in 0..chunks {
                            let (v0, v1) = (vld1q_s8(w0.add(16 * k)), vld1q_s8(w1.add(16 * k)));
                            let (r0, r1, r2, r3) = (row(0, k), row(1, k), row(2, k), row(3, k));
                            a0 = dot16::<SDOT>(a0, r0, v0);
                            b0 = dot16::<SDOT>(b0, r0, v1);
                            a1 = dot16::<SDOT>(a1, r1, v0);
                            b1 = dot16::<SDOT>(b1, r1, v1);
                            a2 = dot16::<SDOT>(a2, r2, v0);
                            b2 = dot16::<SDOT>(b2, r2, v1);
                            a3 = dot16::<SDOT>(a3, r3, v0);
                            b3 = dot16::<SDOT>(b3, r3, v1);
                        }
                        out[c] = finish(c, [a0, a1, a2, a3]);
                        out[c + 1] = finish(c + 1, [b0, b1, b2, b3]);
                        c += 2;
                    }
                    if c < n {
                        let w0 = weights[(first + c) * taps..][..taps].as_ptr().cast::<i8>();
                        let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
                        for k in 0..chunks {
                            let v0 = vld1q_s8(w0.add(16 * k));
                            a0 = dot16::<SDOT>(a0, row(0, k), v0);
                            a1 = dot16::<SDOT>(a1, row(1, k), v0);
                            a2 = dot16::<SDOT>(a2, row(2, k), v0);
                            a3 = dot16::<SDOT>(a3, row(3, k), v0);
                        }
                        out[c] = finish(c, [a0, a1, a2, a3]);
                    }
                }
            }
        }
    }
}
