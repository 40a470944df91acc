//! The host dot product on 16 bytes at a time: SSE2 `PMADDWD` on x86-64, NEON `SMULL` +
//! `SADALP` on aarch64 (the Raspberry Pi). Both instruction sets are part of their target's
//! baseline, so no run-time detection is needed. Integer-exact, so the result is the same as
//! [`super::dot::dot_reference`] bit for bit: tested against it in `crate::tests` (on x86-64, and
//! under qemu-aarch64 by `.ci/run`) and by edge-cli's aarch64 test (golden logits).
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadl_epi64, _mm_loadu_si128, _mm_madd_epi16,
    _mm_setzero_si128, _mm_shuffle_epi32, _mm_srai_epi16, _mm_unpackhi_epi8, _mm_unpacklo_epi8,
};

#[cfg(target_arch = "aarch64")]
use core::arch::aarch64::{
    vaddvq_s32, vdupq_n_s32, vget_low_s16, vget_low_s8, vld1_s8, vld1q_s8, vmlal_high_s16,
    vmlal_s16, vmovl_s8, vmull_high_s8, vmull_s8, vpadalq_s16, vreinterpretq_s16_s8,
};

/// Same result as [`super::dot::dot_reference`]: `Σ a[i] · (b[i] as i8)`. Whole 16-byte blocks
/// go through [`blocks`]; the tail through the plain loop.
#[inline]
pub fn dot(a: &[i8], b: &[u8]) -> i32 {
    let b = &b[..a.len()];
    let (xs, x_rest) = a.as_chunks::<16>();
    let (ws, w_rest) = b.as_chunks::<16>();
    blocks(xs, ws) + super::dot::dot_reference(x_rest, w_rest)
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

/// The four rows' products with the weights `w` (a multiple of eight: the first `w.len()`
/// values of each row) for a patch in the SIMD layout ([`super::patch`]: groups of eight values
/// per row in order, the four rows' groups one after the other, 64 bytes a group): eight weights
/// at a time are widened to int16 once and multiplied with the eight matching values of each row.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn quad_dot(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let (ws, _) = w.as_chunks::<8>();
    let (groups, _) = patch.as_chunks::<64>();
    // SAFETY: SSE2 is part of the x86-64 baseline. `_mm_loadl_epi64` reads exactly the 8 bytes
    // of one `[u8; 8]`, and each `_mm_loadu_si128` 16 of the 64 bytes of one `[i8; 64]`
    // (unaligned loads allow any address). The rest is register arithmetic: weights are
    // sign-extended to int16 (unpack with themselves, shift right by 8); `PMADDWD` adds pairs of
    // int16 products (|x − z| ≤ 255 times |w| ≤ 128: no overflow) into int32 lanes, summed at
    // the end.
    unsafe {
        let mut acc = [_mm_setzero_si128(); 4];
        for (w, g) in ws.iter().zip(groups) {
            let w = _mm_loadl_epi64(w.as_ptr().cast::<__m128i>());
            let w = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(w, w));
            for (r, a) in acc.iter_mut().enumerate() {
                let p = _mm_loadu_si128(g.as_ptr().add(16 * r).cast::<__m128i>());
                *a = _mm_add_epi32(*a, _mm_madd_epi16(p, w));
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
