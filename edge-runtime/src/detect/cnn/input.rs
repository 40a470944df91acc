//! A camera frame as the CNN detector's input: shrunk by a whole factor (the mean of each
//! `factor × factor` block, rounded half up) and padded with black (0, as the detector was
//! trained) at the right and bottom to multiples of its largest stride; and the faces found in
//! that input mapped back to the frame.

use super::decode::Detection;
use crate::preprocess::GrayFrame;

/// The input size for a `width × height` frame shrunk by `factor`: both sides rounded up to
/// multiples of `multiple` (the detector's largest stride). `None` for a factor of 0, an empty
/// frame, or a side over 4096 pixels.
pub fn input_size(
    width: usize,
    height: usize,
    factor: usize,
    multiple: usize,
) -> Option<(usize, usize)> {
    if factor == 0 || multiple == 0 || width == 0 || height == 0 || width > 4096 || height > 4096 {
        return None;
    }
    Some((
        width.div_ceil(factor).next_multiple_of(multiple),
        height.div_ceil(factor).next_multiple_of(multiple),
    ))
}

/// Writes `frame` shrunk by `factor` into `out`, an `iw × ih` input from [`input_size`]: each
/// input pixel the rounded mean of its block (blocks at the frame's right and bottom edges
/// average the pixels they have), 0 past the frame.
pub fn prepare(frame: &GrayFrame<'_>, factor: usize, (iw, ih): (usize, usize), out: &mut [u8]) {
    debug_assert!(out.len() >= iw * ih);
    let (sw, sh) = (frame.width.div_ceil(factor), frame.height.div_ceil(factor));
    if factor == 2 {
        return halve(frame, (iw, ih), out);
    }
    for y in 0..ih {
        let row = &mut out[y * iw..(y + 1) * iw];
        if y >= sh {
            row.fill(0);
            continue;
        }
        let (y0, y1) = (y * factor, ((y + 1) * factor).min(frame.height));
        for (x, o) in row.iter_mut().enumerate() {
            if x >= sw {
                *o = 0;
                continue;
            }
            let (x0, x1) = (x * factor, ((x + 1) * factor).min(frame.width));
            let mut sum = 0u32;
            for yy in y0..y1 {
                let src = &frame.pixels[yy * frame.stride + x0..yy * frame.stride + x1];
                sum += src.iter().map(|&p| u32::from(p)).sum::<u32>();
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            *o = ((sum + n / 2) / n) as u8;
        }
    }
}

/// [`prepare`] for a factor of 2: whole 2x2 blocks summed two rows at a time, `(sum + 2) / 4`;
/// an odd last row or column averages the pixels it has, as `prepare` does.
fn halve(frame: &GrayFrame<'_>, (iw, ih): (usize, usize), out: &mut [u8]) {
    let (w, h) = (frame.width, frame.height);
    let (sw, sh) = (w.div_ceil(2), h.div_ceil(2));
    for (y, row) in out[..iw * ih].chunks_exact_mut(iw).enumerate() {
        if y >= sh {
            row.fill(0);
            continue;
        }
        let top = &frame.pixels[2 * y * frame.stride..][..w];
        let bottom = if 2 * y + 1 < h {
            &frame.pixels[(2 * y + 1) * frame.stride..][..w]
        } else {
            top
        };
        let full = w / 2;
        // Two outputs from one word of each row: the four pixels' even and odd bytes summed in
        // two 16-bit lanes (at most 4·255 + 2, so no lane carries into the other).
        let (quads, _) = top[..2 * full].as_chunks::<4>();
        let (under, _) = bottom[..2 * full].as_chunks::<4>();
        let (pairs, _) = row[..full].as_chunks_mut::<2>();
        for ((o, t), b) in pairs.iter_mut().zip(quads).zip(under) {
            let (t, b) = (u32::from_le_bytes(*t), u32::from_le_bytes(*b));
            let lanes = 0x00ff_00ff;
            let sum = (t & lanes) + ((t >> 8) & lanes) + (b & lanes) + ((b >> 8) & lanes);
            let sum = sum + 0x0002_0002;
            *o = [(sum >> 2) as u8, (sum >> 18) as u8];
        }
        for x in 2 * pairs.len()..full {
            let (t, b) = (&top[2 * x..2 * x + 2], &bottom[2 * x..2 * x + 2]);
            let sum = u32::from(t[0]) + u32::from(t[1]) + u32::from(b[0]) + u32::from(b[1]);
            row[x] = ((sum + 2) >> 2) as u8;
        }
        if sw > full {
            // The odd last column: its one or two pixels.
            let (t, b) = (u32::from(top[w - 1]), u32::from(bottom[w - 1]));
            row[full] = if 2 * y + 1 < h {
                ((t + b + 1) >> 1) as u8
            } else {
                t as u8
            };
        }
        row[sw..].fill(0);
    }
}

impl Detection {
    /// The box clipped to a `width × height` frame, as a face box (`None` when nothing of it is
    /// inside).
    pub fn clamped_face(&self, width: usize, height: usize) -> Option<crate::detect::Face> {
        let (w, h) = (
            width.min(i32::MAX as usize) as i32,
            height.min(i32::MAX as usize) as i32,
        );
        let (x0, y0) = (self.x.clamp(0, w), self.y.clamp(0, h));
        let (x1, y1) = (
            self.x.saturating_add(self.w).clamp(0, w),
            self.y.saturating_add(self.h).clamp(0, h),
        );
        (x1 > x0 && y1 > y0).then(|| crate::detect::Face {
            x: x0 as u32,
            y: y0 as u32,
            w: (x1 - x0) as u32,
            h: (y1 - y0) as u32,
            neighbours: 1,
        })
    }

    /// The face in frame pixels, found in an input shrunk by `factor`.
    pub fn in_frame(&self, factor: usize) -> Detection {
        let f = factor as i32;
        Detection {
            x: self.x.saturating_mul(f),
            y: self.y.saturating_mul(f),
            w: self.w.saturating_mul(f),
            h: self.h.saturating_mul(f),
            score: self.score,
            landmarks: self
                .landmarks
                .map(|[x, y]| [x.saturating_mul(f), y.saturating_mul(f)]),
        }
    }
}
