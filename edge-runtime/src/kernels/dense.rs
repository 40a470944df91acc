//! Fully connected layer with the fused output stage.
//!
//! The input vector is first turned into int16 values `x − zero_point` in the arena's scratch,
//! so each row is one plain product with no zero-point share to subtract. On Cortex-M with the
//! `dsp` feature (values in the `SMLAD` pairing, [`super::patch::INTERLEAVED_ORDER`]): per four weights
//! one load, two `SXTB16`, one `LDRD` and two `SMLAD`; on x86-64 and aarch64 hosts eight weights
//! widened at a time and multiplied with eight values (`PMADDWD` / `SMLAL`); elsewhere the
//! plain loop. [`dense_reference`] is the int8 dot product with the share subtracted.

use super::dot::{dot, sum};
use super::patch::INTERLEAVED_ORDER;
use super::{i32_at, stage_at};

/// Bytes of scratch [`dense`] needs for `n` inputs: int16 values, whole groups of four, plus 3
/// to start them on a word boundary (for the `LDRD`s on Cortex-M).
pub const fn scratch_bytes(n: usize) -> usize {
    2 * n.div_ceil(4) * 4 + 3
}

/// `output[o] = stage_o(relu?(bias[o] + Σ_i w[o][i] · (input[i] − input_zero)))`; `scratch`
/// holds at least [`scratch_bytes`]`(input.len())`. Same result as [`dense_reference`].
#[allow(clippy::too_many_arguments)]
pub fn dense(
    input: &[i8],
    weights: &[u8],
    bias: &[u8],
    stages: &[u8],
    input_zero: i32,
    relu: bool,
    output: &mut [i8],
    scratch: &mut [i8],
) {
    let n = input.len();
    let start = scratch.as_ptr().align_offset(4).min(3);
    let x16 = &mut scratch[start..start + 2 * n.div_ceil(4) * 4];
    for (i, &v) in input.iter().enumerate() {
        // Each group of four as v0 v2 v1 v3 for the SMLAD kernel, in order elsewhere.
        let at = 2 * (i & !3 | INTERLEAVED_ORDER[i & 3]);
        let b = ((i32::from(v) - input_zero) as i16).to_le_bytes();
        x16[at] = b[0] as i8;
        x16[at + 1] = b[1] as i8;
    }
    for (o, out) in output.iter_mut().enumerate() {
        let row = &weights[o * n..][..n];
        let acc = i32_at(bias, o) + row_dot(x16, row);
        *out = stage_at(stages, o).output(acc, relu);
    }
}

/// `Σ x[i] · w[i]` for the int16 input `x` of [`dense`] (little-endian bytes) and int8 `w`.
#[inline]
fn row_dot(x16: &[i8], w: &[u8]) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        super::dsp::row_dot(x16, w)
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        super::simd::row_dot16(x16, w)
    }
    #[cfg(not(any(
        all(feature = "dsp", target_arch = "arm"),
        target_arch = "x86_64",
        target_arch = "aarch64"
    )))]
    {
        super::reference::row_dot_reference(x16, w)
    }
}

/// The int8 version: per output, the dot product of the int8 input with the row, minus the
/// zero point's share `input_zero · Σ w`.
pub fn dense_reference(
    input: &[i8],
    weights: &[u8],
    bias: &[u8],
    stages: &[u8],
    input_zero: i32,
    relu: bool,
    output: &mut [i8],
) {
    let n = input.len();
    debug_assert_eq!(weights.len(), n * output.len());
    for (o, out) in output.iter_mut().enumerate() {
        let row = &weights[o * n..][..n];
        // Σ (x − zero)·w = Σ x·w − zero·Σ w.
        let acc = i32_at(bias, o) + dot(input, row) - input_zero * sum(row);
        *out = stage_at(stages, o).output(acc, relu);
    }
}
