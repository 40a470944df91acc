//! The plain inner products every fast kernel is checked against (the conformance cases) and
//! falls back to for the part of a row its wide steps do not cover: one multiply-accumulate per
//! value, exact integer arithmetic. Nothing here depends on the target's kernels.

use super::patch::{value, GROUP, INTERLEAVED_ORDER};

/// The plain dot product `Σ a[i] · b[i]` of int8 values, `b` as bytes (at least as long as
/// `a`). Each product of two int8 values fits in i16, which lets compilers use 16-bit SIMD
/// multiplies on the host.
#[inline]
pub fn dot_reference(a: &[i8], b: &[u8]) -> i32 {
    a.iter()
        .zip(&b[..a.len()])
        .map(|(&x, &w)| i32::from(i16::from(x) * i16::from(w as i8)))
        .sum()
}

/// The products of values `from..from + w.len()` of each of a patch's four rows with the int8
/// weights `w`.
pub fn quad_partial(patch: &[i8], w: &[u8], from: usize) -> [i32; 4] {
    core::array::from_fn(|r| {
        w.iter()
            .enumerate()
            .map(|(i, &wi)| value(patch, r, from + i) * i32::from(wi as i8))
            .sum()
    })
}

/// The plain quad product: `[Σ_i row_r[i] · w[i]]` over the channel's `9·cin` weights.
pub fn quad_dot_reference(patch: &[i8], cin: usize, w: &[u8]) -> [i32; 4] {
    quad_partial(patch, &w[..9 * cin], 0)
}

/// The quad product over a channel's exact `9·cin` weights with `groups` taking the whole groups
/// of values (a fast kernel) and the plain loop the rest (the first layer's `9·1`).
#[inline(always)]
pub fn quad_dot_exact(
    patch: &[i8],
    cin: usize,
    w: &[u8],
    groups: impl FnOnce(&[i8], &[u8]) -> [i32; 4],
) -> [i32; 4] {
    let k = 9 * cin;
    let body = k - k % GROUP;
    let mut acc = groups(patch, &w[..body]);
    if body < k {
        let tail = quad_partial(patch, &w[body..k], body);
        for (a, t) in acc.iter_mut().zip(tail) {
            *a += t;
        }
    }
    acc
}

/// The plain quad product with pre-widened weights (int16, the `widened` layout).
pub fn quad_dot_wide_reference(patch: &[i8], w: &[u8]) -> [i32; 4] {
    core::array::from_fn(|r| {
        (0..w.len() / 2)
            .map(|i| value(patch, r, i) * super::widened::value(w, i))
            .sum()
    })
}

/// `Σ x[i] · w[i]` for a dense layer's int16 input `x16` (little-endian bytes, groups of four in
/// the patch's pairing) and int8 weights `w`.
pub fn row_dot_reference(x16: &[i8], w: &[u8]) -> i32 {
    w.iter()
        .enumerate()
        .map(|(i, &wi)| {
            let at = 2 * (i & !3 | INTERLEAVED_ORDER[i & 3]);
            i32::from(i16::from_le_bytes([x16[at] as u8, x16[at + 1] as u8])) * i32::from(wi as i8)
        })
        .sum()
}
