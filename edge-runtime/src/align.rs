//! The aligned crop: a face's 48x48 input sampled along its eye line, so that the eyes are level
//! and the face is scaled by their distance, from the CNN detector's landmarks. Integer only:
//! source positions in 1/256 pixel, bilinear samples averaged over `t × t` sub-samples per
//! output pixel (`t` grows with the crop as in [`crate::preprocess::resize_to_input`]), pixels
//! outside the frame repeated from its edge.

use crate::preprocess::{GrayFrame, MAX_TAPS};
use crate::INPUT_PIXELS;

const SIDE: usize = 48;

/// Where a face sits in the crop, in units of the distance between its eyes (Q8: 256 = one eye
/// distance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlignRule {
    /// The crop's side.
    pub side_q8: i64,
    /// The crop's centre below the eyes' midpoint, along the face's vertical axis.
    pub down_q8: i64,
}

/// Why an aligned crop could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AlignError {
    /// The two eyes are at the same place (or the frame is empty).
    Degenerate,
}

impl core::fmt::Display for AlignError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AlignError::Degenerate => {
                write!(f, "no eye line: the eyes coincide or the frame is empty")
            }
        }
    }
}

/// `⌊√n⌋`.
fn isqrt(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let mut x = 1u64 << (64 - n.leading_zeros()).div_ceil(2);
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// The 48x48 input of the face whose eyes are at `right` and `left` (the subject's right eye,
/// on the image's left, and left eye; frame pixels, a pixel spanning `[i, i + 1)`): the square
/// of side `rule.side_q8 / 256` eye distances centred `rule.down_q8 / 256` eye distances below
/// the eyes' midpoint, its rows parallel to the eye line, resampled with the integer resizer's
/// rounding. The light rule is not applied.
///
/// # Errors
/// [`AlignError::Degenerate`] when the eyes coincide or the frame is empty.
pub fn aligned_input(
    frame: &GrayFrame<'_>,
    (right, left): ([i32; 2], [i32; 2]),
    rule: AlignRule,
    out: &mut [u8; INPUT_PIXELS],
) -> Result<(), AlignError> {
    let (vx, vy) = (
        i64::from(left[0]) - i64::from(right[0]),
        i64::from(left[1]) - i64::from(right[1]),
    );
    if (vx, vy) == (0, 0) || frame.width == 0 || frame.height == 0 {
        return Err(AlignError::Degenerate);
    }
    // The crop's side in pixels sets the sub-samples per output pixel.
    let eye = isqrt((vx * vx + vy * vy) as u64) as i64;
    let side = (rule.side_q8 * eye / 256).max(1) as usize;
    let taps = side.div_ceil(SIDE).clamp(1, MAX_TAPS);
    let n = (SIDE * taps) as i64;
    // Centre (Q8) and the face's axes: along the eyes `v`, down `(−vy, vx)`.
    let cx = 128 * (i64::from(left[0]) + i64::from(right[0])) - rule.down_q8 * vy;
    let cy = 128 * (i64::from(left[1]) + i64::from(right[1])) + rule.down_q8 * vx;
    // Sub-sample i of n along an axis sits at (2i + 1 − n) / 2n of the side from the centre.
    let offset = |i: usize| (2 * i as i64 + 1 - n) * rule.side_q8;
    let (w, h) = (frame.width as i64, frame.height as i64);
    // Index and weight (of the next pixel) of a Q8 position, pixel centres at +128.
    let split = |q: i64, len: i64| -> (usize, usize, u32) {
        let q = q - 128;
        let i = q.div_euclid(256);
        let f = q.rem_euclid(256) as u32;
        if i < 0 {
            (0, 0, 0)
        } else if i >= len - 1 {
            let last = (len - 1) as usize;
            (last, last, 0)
        } else {
            (i as usize, i as usize + 1, f)
        }
    };
    let samples = (taps * taps) as u32;
    let denom = samples << 16;
    for oy in 0..SIDE {
        for ox in 0..SIDE {
            let mut acc: u32 = 0;
            for ky in 0..taps {
                let b = offset(oy * taps + ky);
                for kx in 0..taps {
                    let a = offset(ox * taps + kx);
                    // p = c + a·v + b·(−vy, vx), the products over 2n (rounded down).
                    let px = cx + (a * vx - b * vy).div_euclid(2 * n);
                    let py = cy + (a * vy + b * vx).div_euclid(2 * n);
                    let (x0, x1, fx) = split(px, w);
                    let (y0, y1, fy) = split(py, h);
                    let top = frame.at(x0, y0) * (256 - fx) + frame.at(x1, y0) * fx;
                    let bottom = frame.at(x0, y1) * (256 - fx) + frame.at(x1, y1) * fx;
                    acc += top * (256 - fy) + bottom * fy;
                }
            }
            out[oy * SIDE + ox] = ((acc + denom / 2) / denom) as u8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{resize_to_input, Square};

    const RULE: AlignRule = AlignRule {
        side_q8: 3 * 256,
        down_q8: 0,
    };

    #[test]
    fn integer_square_roots() {
        for n in [
            0u64,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            99,
            100,
            1 << 40,
            (1 << 40) + 5,
            u32::MAX as u64,
        ] {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "{n}");
        }
    }

    #[test]
    fn level_eyes_take_the_square_the_resizer_takes() {
        // Eyes 32 px apart on row 60: a 96 px square centred between them.
        let px: std::vec::Vec<u8> = (0..200 * 160).map(|i| (i * 7 % 251) as u8).collect();
        let frame = GrayFrame::new(&px, 200, 160).unwrap();
        let mut aligned = [0u8; INPUT_PIXELS];
        aligned_input(&frame, ([84, 60], [116, 60]), RULE, &mut aligned).unwrap();
        let mut boxed = [0u8; INPUT_PIXELS];
        let sq = Square {
            x: 52,
            y: 12,
            side: 96,
        };
        resize_to_input(&frame, sq, &mut boxed).unwrap();
        let off = aligned
            .iter()
            .zip(&boxed)
            .filter(|(a, b)| a.abs_diff(**b) > 1)
            .count();
        assert_eq!(off, 0);
    }

    #[test]
    fn a_quarter_turn_of_frame_and_eyes_gives_the_same_face() {
        let (w, h) = (120usize, 90usize);
        let px: std::vec::Vec<u8> = (0..w * h)
            .map(|i| ((i % w) * 3 + (i / w) * 5) as u8)
            .collect();
        // Rotated by 90° clockwise: (x, y) -> (h − 1 − y, x), the frame h wide and w high.
        let mut turned = std::vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                turned[x * h + (h - 1 - y)] = px[y * w + x];
            }
        }
        let a = GrayFrame::new(&px, w, h).unwrap();
        let b = GrayFrame::new(&turned, h, w).unwrap();
        // A pixel's corner (x, y) goes to (h − y, x).
        let turn = |[x, y]: [i32; 2]| [h as i32 - y, x];
        let (re, le) = ([50, 40], [70, 40]);
        let mut one = [0u8; INPUT_PIXELS];
        let mut two = [0u8; INPUT_PIXELS];
        let rule = AlignRule {
            side_q8: 600,
            down_q8: 90,
        };
        aligned_input(&a, (re, le), rule, &mut one).unwrap();
        aligned_input(&b, (turn(re), turn(le)), rule, &mut two).unwrap();
        let off = one
            .iter()
            .zip(&two)
            .filter(|(p, q)| p.abs_diff(**q) > 1)
            .count();
        assert_eq!(off, 0);
    }

    #[test]
    fn flat_frames_stay_flat_and_coinciding_eyes_are_refused() {
        let px = std::vec![91u8; 64 * 64];
        let frame = GrayFrame::new(&px, 64, 64).unwrap();
        let mut out = [0u8; INPUT_PIXELS];
        // Tilted, partly outside the frame: edge pixels repeat.
        aligned_input(&frame, ([50, 10], [70, 30]), RULE, &mut out).unwrap();
        assert!(out.iter().all(|&p| p == 91));
        assert_eq!(
            aligned_input(&frame, ([5, 5], [5, 5]), RULE, &mut out),
            Err(AlignError::Degenerate)
        );
    }
}
