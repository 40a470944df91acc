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

/// Softmax of `scale · v` (the zero point cancels; subtracting the max keeps exp() in range).
fn softmax_of(values: [i16; CLASS_COUNT], scale: f32) -> [f32; CLASS_COUNT] {
    let max = values.iter().copied().max().unwrap_or(0);
    let mut out = [0f32; CLASS_COUNT];
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(&values) {
        *o = (scale * f32::from(v - max)).exp();
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
    }
}
