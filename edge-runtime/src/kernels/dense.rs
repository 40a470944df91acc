//! Fully connected layer with the fused output stage.
//!
//! On Cortex-M with the `dsp` feature, the input vector is first turned into int16 values
//! `x − zero_point` (in the `SMLAD` pairing, [`super::patch::INTERLEAVED`]) in the arena's
//! scratch, so each row is one plain product with no zero-point share to subtract: per four
//! weights one load, two `SXTB16`, one `LDRD` and two `SMLAD`. Elsewhere the int8 dot product
//! with the share subtracted ([`dense_reference`]).

use super::dot::{dot, sum};
use super::{i32_at, stage_at};

/// Bytes of scratch [`dense`] needs for `n` inputs (word-aligned int16 values on Cortex-M).
pub const fn scratch_bytes(n: usize) -> usize {
    if cfg!(all(feature = "dsp", target_arch = "arm")) {
        2 * n.div_ceil(4) * 4 + 3
    } else {
        0
    }
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
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        let n = input.len();
        let start = scratch.as_ptr().align_offset(4).min(3);
        let x16 = &mut scratch[start..start + 2 * n.div_ceil(4) * 4];
        for (i, &v) in input.iter().enumerate() {
            // Each group of four as v0 v2 v1 v3 (the SMLAD pairing).
            let at = 2 * ((i & !3) | [0, 2, 1, 3][i & 3]);
            let b = ((i32::from(v) - input_zero) as i16).to_le_bytes();
            x16[at] = b[0] as i8;
            x16[at + 1] = b[1] as i8;
        }
        for (o, out) in output.iter_mut().enumerate() {
            let row = &weights[o * n..][..n];
            let acc = i32_at(bias, o) + super::dsp::row_dot(x16, row);
            *out = stage_at(stages, o).output(acc, relu);
        }
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        let _ = scratch;
        dense_reference(input, weights, bias, stages, input_zero, relu, output);
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
