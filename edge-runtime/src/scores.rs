//! Softmax of the int8 logits, for display: confidences that sum to 1. The predicted class itself
//! comes from the integer [`Logits::argmax`](crate::Logits::argmax); this is presentation only.

use crate::format::QParams;
use crate::labels::CLASS_COUNT;
use crate::{Logits, MirroredLogits};

#[cfg(not(any(test, feature = "std")))]
use micromath::F32Ext;

/// Softmax of the dequantized logits `scale · (q − zero)`.
pub fn softmax(logits: &Logits, q: QParams) -> [f32; CLASS_COUNT] {
    softmax_of(logits.0.map(i16::from), q.scale)
}

/// Softmax of the mean of a face's and its mirror image's dequantized logits:
/// `scale · (sum / 2 − zero)`.
pub fn softmax_mirrored(logits: &MirroredLogits, q: QParams) -> [f32; CLASS_COUNT] {
    softmax_of(logits.0, q.scale / 2.0)
}

/// Softmax of a followed face's running average of its logits (×256, in the units of the
/// logits given to the tracker, [`crate::steady::Followed::average`]) whose units dequantize by
/// `scale`: the steady label's confidence.
pub fn softmax_average(average: &[i32; CLASS_COUNT], scale: f32) -> [f32; CLASS_COUNT] {
    let max = average.iter().copied().max().unwrap_or(0);
    // Differences to the max, clamped to the i16 range the exponent needs at most.
    let values = average.map(|v| {
        let d = (i64::from(v) - i64::from(max)).max(i64::from(i16::MIN) * 256);
        d as f32 / 256.0
    });
    softmax_f32(values, scale)
}

/// Softmax of `scale · v` (the zero point cancels; subtracting the max keeps exp() in range).
fn softmax_of(values: [i16; CLASS_COUNT], scale: f32) -> [f32; CLASS_COUNT] {
    let max = values.iter().copied().max().unwrap_or(0);
    softmax_f32(values.map(|v| f32::from(v - max)), scale)
}

/// Softmax of `scale · v` for values whose largest is 0.
fn softmax_f32(values: [f32; CLASS_COUNT], scale: f32) -> [f32; CLASS_COUNT] {
    let mut out = [0f32; CLASS_COUNT];
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(&values) {
        *o = (scale * v).exp();
        sum += *o;
    }
    for o in &mut out {
        *o /= sum;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_to_one_and_keeps_order() {
        let l = Logits([10, -5, 0, 40, 3, 3, -128]);
        let s = softmax(
            &l,
            QParams {
                scale: 0.1,
                zero: 0,
            },
        );
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(s[3] > s[0] && s[0] > s[4] && s[4] == s[5]);
        // The running average of the same logits, ×256, gives the same confidences.
        let avg = l.0.map(|v| i32::from(v) << 8);
        let a = softmax_average(&avg, 0.1);
        for (x, y) in a.iter().zip(&s) {
            assert!((x - y).abs() < 1e-6);
        }
    }
}
