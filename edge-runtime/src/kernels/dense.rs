//! Fully connected layer with the fused output stage.

use super::dot::{dot, sum};
use super::{i32_at, stage_at};

/// `output[o] = stage_o(relu?(bias[o] + Σ_i w[o][i] · (input[i] − input_zero)))`.
pub fn dense(
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
        let acc = if relu { acc.max(0) } else { acc };
        *out = stage_at(stages, o).apply(acc);
    }
}
