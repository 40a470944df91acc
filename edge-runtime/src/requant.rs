//! The integer output stage: from an int32 accumulator to an int8 activation.
//!
//! Each output channel has a [`Stage`]: `q = clamp((acc · m + b) >> n, -128, 127)` with `m` an
//! int32 multiplier, `b` an int64 offset and `n` a right shift, evaluated exactly in 64 bits.
//! The stage stands for `q = round(M · acc + B)` with real `M = m / 2^n` and `B = b / 2^n - 1/2`:
//! the offset `b` already holds the rounding constant `2^(n-1)`, so the shift implements
//! **round half up** (ties toward +∞), a single rounding — TFLite's "single rounding" rule.
//!
//! For a Conv → ReLU → BatchNorm block, `M = γ'·s_in·s_w / s_out` (γ' = γ/√(σ²+ε)) and
//! `B = β'/s_out + z_out` (β' = β − μγ'), applied to `max(acc, 0)`: the ReLU acts on the
//! accumulator, before BatchNorm, exactly as in the float model. A negative γ' gives a negative
//! `m`, which is fine: the ReLU has already been applied, and max pooling afterwards works on
//! the final int8 values, whose order is that of the real values.

/// Bytes of one serialized [`Stage`]: m (i32), n (u32), b (i64), little-endian.
pub const STAGE_BYTES: usize = 16;

/// One output channel's requantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    pub m: i32,
    pub n: u32,
    pub b: i64,
}

impl Stage {
    /// Applies the stage to an accumulator (already passed through ReLU if the layer has one).
    #[inline]
    pub fn apply(&self, acc: i32) -> i8 {
        if self.n >= 32 {
            HighStage {
                m: self.m,
                shift: self.n - 32,
                b: self.b,
            }
            .apply(acc)
        } else {
            let v = i64::from(acc) * i64::from(self.m) + self.b;
            (v >> self.n).clamp(-128, 127) as i8
        }
    }

    /// The stage as a [`HighStage`] with the same results: directly when its shift is at least
    /// 32 (every convolution of the detector file), or for a shift `n < 32` with `m` and `b`
    /// scaled by `2^(32 − n)` (exact: numerator and divisor scaled alike) when `m` still fits in
    /// i32 and `|b| < 2^62`, so that no i32 accumulator can overflow the sum (the detector's adds:
    /// `m` 1, `n` 15). Otherwise `None`.
    #[inline]
    pub fn high(&self) -> Option<HighStage> {
        if self.n >= 32 {
            return Some(HighStage {
                m: self.m,
                shift: self.n - 32,
                b: self.b,
            });
        }
        let k = 32 - self.n;
        let m = i32::try_from(i64::from(self.m) << k).ok()?;
        let b = self
            .b
            .checked_mul(1i64 << k)
            .filter(|b| b.unsigned_abs() < 1 << 62)?;
        Some(HighStage { m, shift: 0, b })
    }

    /// The plain definition [`Stage::apply`] is tested against: the 64-bit product and sum,
    /// shifted by `n` at once.
    pub fn apply_reference(&self, acc: i32) -> i8 {
        ((i64::from(acc) * i64::from(self.m) + self.b) >> self.n).clamp(-128, 127) as i8
    }

    /// The layer's output for an accumulator: the ReLU (when the layer has one) on the
    /// accumulator, then the stage.
    #[inline]
    pub fn output(&self, acc: i32, relu: bool) -> i8 {
        self.apply(if relu { acc.max(0) } else { acc })
    }

    /// Reads a stage from its 16 little-endian bytes.
    #[inline]
    pub fn from_le_bytes(bytes: &[u8; STAGE_BYTES]) -> Stage {
        let [m0, m1, m2, m3, n0, n1, n2, n3, b0, b1, b2, b3, b4, b5, b6, b7] = *bytes;
        Stage {
            m: i32::from_le_bytes([m0, m1, m2, m3]),
            n: u32::from_le_bytes([n0, n1, n2, n3]),
            b: i64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        }
    }

    /// The 16 little-endian bytes of the stage.
    pub fn to_le_bytes(&self) -> [u8; STAGE_BYTES] {
        let mut out = [0u8; STAGE_BYTES];
        out[..4].copy_from_slice(&self.m.to_le_bytes());
        out[4..8].copy_from_slice(&self.n.to_le_bytes());
        out[8..].copy_from_slice(&self.b.to_le_bytes());
        out
    }

    /// Whether `|acc · m| + |b|` stays below 2^63 for every `|acc| <= max_acc` and the shift is
    /// in `1..=62`: the conditions under which [`Stage::apply`] is exact.
    pub fn is_safe_for(&self, max_acc: u64) -> bool {
        if !(1..=62).contains(&self.n) {
            return false;
        }
        let prod = u128::from(max_acc) * u128::from(self.m.unsigned_abs());
        prod + u128::from(self.b.unsigned_abs()) < (1u128 << 63)
    }
}

/// A [`Stage`] with a shift `n ≥ 32`, in the form a 32-bit core applies it: an arithmetic
/// shift by `n` is one by 32 then one by `n − 32`, and after the first (`|v| < 2^63`) the value
/// fits in i32 — the high word of one multiply-accumulate (`SMLAL`), a shift and a saturation,
/// instead of a 64-bit shift. [`Stage::apply`] takes this path for such stages; kernels that
/// decode their stages once per layer keep them in this form.
///
/// `repr(C)` (`m` at byte 0, `shift` at 4, `b` at 8): the M7 kernels read its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct HighStage {
    pub m: i32,
    /// `n − 32`.
    pub shift: u32,
    pub b: i64,
}

impl HighStage {
    /// The stage's result for `acc` (equal to [`Stage::apply`]).
    #[inline(always)]
    pub fn apply(&self, acc: i32) -> i8 {
        let v = i64::from(acc) * i64::from(self.m) + self.b;
        let hi = (v >> 32) as i32;
        (hi >> self.shift).clamp(-128, 127) as i8
    }

    /// The layer's output: the ReLU on the accumulator when `RELU`, then the stage (equal to
    /// [`Stage::output`]).
    #[inline(always)]
    pub fn output<const RELU: bool>(&self, acc: i32) -> i8 {
        self.apply(if RELU { acc.max(0) } else { acc })
    }
}

/// Why an output channel was refused by [`check_channel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelProblem {
    /// Its int32 accumulator could overflow.
    Overflow,
    /// Its stage's shift or offset is out of range for the accumulators it can see.
    BadStage,
}

/// Checks one output channel of a layer read from a file: with every input `|x − z| ≤ max_dx`,
/// the accumulator `bias + Σ w·(x − z)` (weights: int8 bytes) fits in i32, and the stage is exact
/// on it ([`Stage::is_safe_for`]).
pub fn check_channel(
    weights: &[u8],
    bias: i32,
    stage: &Stage,
    max_dx: u64,
) -> Result<(), ChannelProblem> {
    let sum_abs: u64 = weights
        .iter()
        .map(|&v| u64::from((v as i8).unsigned_abs()))
        .sum();
    let max_acc = sum_abs * max_dx + u64::from(bias.unsigned_abs());
    if max_acc > i32::MAX as u64 {
        return Err(ChannelProblem::Overflow);
    }
    if !stage.is_safe_for(max_acc) {
        return Err(ChannelProblem::BadStage);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_up_and_saturates() {
        // M = 0.5, B = 0: q = round_half_up(acc / 2).
        let s = Stage {
            m: 1 << 30,
            n: 31,
            b: 1 << 30,
        };
        assert_eq!(s.apply(3), 2); // 1.5 -> 2
        assert_eq!(s.apply(-3), -1); // -1.5 -> -1 (half up)
        assert_eq!(s.apply(4), 2);
        assert_eq!(s.apply(1000), 127);
        assert_eq!(s.apply(-1000), -128);
        let bytes = s.to_le_bytes();
        assert_eq!(Stage::from_le_bytes(&bytes), s);
    }

    #[test]
    fn negative_multiplier_flips_order() {
        let s = Stage {
            m: -(1 << 30),
            n: 30,
            b: 1 << 29,
        };
        assert_eq!(s.apply(0), 0);
        assert_eq!(s.apply(5), -5);
        assert!(s.is_safe_for(1 << 31));
        assert!(!Stage { n: 0, ..s }.is_safe_for(1));
    }

    #[test]
    fn high_stage_equals_the_definition() {
        // Stages with shifts 32..=62 and multipliers, offsets and accumulators spread over their
        // ranges (kept where the stage is exact: |acc·m| + |b| < 2^63).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut checked = 0;
        for round in 0..40_000 {
            let n = if round % 2 == 0 {
                32 + (next() % 31) as u32
            } else {
                1 + (next() % 31) as u32
            };
            let m = next() as i32;
            let b = (next() as i64) >> (next() % 64);
            let s = Stage { m, n, b };
            let acc = (next() as i32) >> (next() % 32);
            if !s.is_safe_for(u64::from(acc.unsigned_abs())) {
                continue;
            }
            let Some(h) = s.high() else {
                assert!(n < 32, "{s:?}");
                continue;
            };
            assert_eq!(h.apply(acc), s.apply_reference(acc), "{s:?} {acc}");
            assert_eq!(h.output::<true>(acc), s.output(acc, true), "{s:?} {acc}");
            assert_eq!(h.output::<false>(acc), s.output(acc, false), "{s:?} {acc}");
            checked += 1;
        }
        assert!(checked > 10_000, "{checked}");
        // The detector's add stage, and one whose multiplier cannot be scaled.
        let add = Stage {
            m: 1,
            n: 15,
            b: -4_177_920,
        };
        let h = add.high().expect("scalable");
        for acc in [-(1 << 25), -1, 0, 1, 12345, 1 << 25] {
            assert_eq!(h.apply(acc), add.apply_reference(acc));
        }
        assert_eq!(
            Stage {
                m: 1 << 20,
                n: 15,
                b: 0
            }
            .high(),
            None
        );
    }
}
