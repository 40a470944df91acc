//! What every conv kernel shares: the layer's shape and how the four accumulators of a pool
//! quad become one int8 output.

use super::{i32_at, stage_at};

/// Shapes and quantization of one conv call.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub input_zero: i32,
    pub relu: bool,
    pub pool: bool,
}

/// Channel `co`'s pooled int8 output from its four accumulators: the stage of the largest one
/// (the smallest for a negative multiplier: the stage is monotone in the accumulator, so this
/// is the largest of the four int8 results) plus the bias, after the ReLU when the layer has
/// one.
#[inline(always)]
pub(crate) fn pooled_output(
    [a, b, c, d]: [i32; 4],
    bias: &[u8],
    stages: &[u8],
    co: usize,
    relu: bool,
) -> i8 {
    let stage = stage_at(stages, co);
    let acc = if stage.m >= 0 {
        a.max(b).max(c.max(d))
    } else {
        a.min(b).min(c.min(d))
    } + i32_at(bias, co);
    stage.output(acc, relu)
}
