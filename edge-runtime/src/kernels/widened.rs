//! The pre-widened weight layout the fast kernels read: each group of four int8 weights stored
//! as int16 in the order the `SMLAD` pairs take them. [`crate::wide`] builds a model's
//! companion blob of these; the kernels and their conformance tests use the layout from here.

/// `w` (whole groups of four int8 weights) widened into `out` (twice as long): each group
/// `w0 w1 w2 w3` as int16 `w0 w2 w1 w3`. (On the M7 the detector's pointwise layers widen with
/// `kernels::dsp::widen_words`, two `SXTB16` per group, the same bytes.)
pub fn widen_into(w: &[u8], out: &mut [u8]) {
    for (g, o) in w.as_chunks::<4>().0.iter().zip(out.as_chunks_mut::<8>().0) {
        for (k, &j) in [0usize, 2, 1, 3].iter().enumerate() {
            o[2 * k..2 * k + 2].copy_from_slice(&i16::from(g[j] as i8).to_le_bytes());
        }
    }
}

/// Weight `i` of widened weights `w` (the inverse of [`widen_into`]).
#[inline]
pub fn value(w: &[u8], i: usize) -> i32 {
    let at = 2 * (i / 4 * 4 + [0, 2, 1, 3][i % 4]);
    i32::from(i16::from_le_bytes([w[at], w[at + 1]]))
}
