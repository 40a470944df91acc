//! Softmax of the int8 logits, for display: confidences that sum to 1. The predicted class itself
//! comes from the integer [`Logits::argmax`](crate::Logits::argmax); this is presentation only.

use crate::format::QParams;
use crate::labels::CLASS_COUNT;
use crate::Logits;

#[cfg(not(any(test, feature = "std")))]
use micromath::F32Ext;

/// Softmax of the dequantized logits `scale · (q − zero)`.
pub fn softmax(logits: &Logits, q: QParams) -> [f32; CLASS_COUNT] {
    let max = logits.0.iter().copied().max().unwrap_or(0);
    let mut out = [0f32; CLASS_COUNT];
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(&logits.0) {
        // The zero point cancels in softmax; subtracting the max keeps exp() in range.
        *o = (q.scale * f32::from(i16::from(v) - i16::from(max))).exp();
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
