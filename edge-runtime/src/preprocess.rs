//! From a camera frame or a photo to the model's 48x48 gray input, the same integer code on the
//! Pi, the desktop and the microcontroller.
//!
//! * [`luma_422`], [`luma_422_in_place`]: the Y channel of a YUV 4:2:2 frame (YUYV or UYVY), as
//!   cameras (OV7725, UVC webcams) deliver it.
//! * [`Square`]: the face region, a square inside the frame: [`Square::centre`] when there is no
//!   detector result, [`Square::around`] to grow a detected box by a margin.
//! * [`resize_to_input`]: integer bilinear resampling of the square to 48x48. When the square is
//!   larger than 48 pixels, each output pixel averages `t × t` bilinear taps spread over its
//!   footprint (`t = ceil(side / 48)`, at most 8), so large faces do not alias. A 48-pixel square
//!   is copied exactly.
//!
//! All arithmetic is integer: positions in 1/256 pixel, weights in 1/256, rounding half up.

/// Side of the model input.
pub const SIDE: usize = 48;
/// Pixels of the model input, `SIDE * SIDE`.
const INPUT_PIXELS: usize = SIDE * SIDE;
/// Most taps per axis when shrinking (8 × 8 = 64 samples per output pixel).
pub(crate) const MAX_TAPS: usize = 8;

/// A square region of a frame, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Square {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Side length (≥ 1 for a usable square).
    pub side: usize,
}

impl Square {
    /// The largest square centred in a `width × height` frame.
    pub fn centre(width: usize, height: usize) -> Square {
        let side = width.min(height);
        Square {
            x: (width - side) / 2,
            y: (height - side) / 2,
            side,
        }
    }

    /// The square centred on the box `(x, y, w, h)`, its side the box's larger side grown by
    /// `margin_percent` (e.g. 20 → 1.2×), then shrunk and shifted as little as needed to lie
    /// inside the `width × height` frame. `None` when the frame or the box is empty.
    pub fn around(
        (x, y, w, h): (usize, usize, usize, usize),
        margin_percent: usize,
        width: usize,
        height: usize,
    ) -> Option<Square> {
        if width == 0 || height == 0 || w == 0 || h == 0 {
            return None;
        }
        let grown = w.max(h).saturating_mul(100 + margin_percent) / 100;
        let side = grown.max(1).min(width).min(height);
        // Centre in doubled coordinates to keep the half pixel.
        let cx2 = 2 * x + w;
        let cy2 = 2 * y + h;
        let place = |c2: usize, limit: usize| -> usize {
            let start = c2.saturating_sub(side) / 2;
            start.min(limit - side)
        };
        Some(Square {
            x: place(cx2, width),
            y: place(cy2, height),
            side,
        })
    }

    /// True when the square lies inside a `width × height` frame and is not empty.
    pub fn fits(&self, width: usize, height: usize) -> bool {
        self.side > 0
            && self.x.checked_add(self.side).is_some_and(|r| r <= width)
            && self.y.checked_add(self.side).is_some_and(|b| b <= height)
    }
}

/// Why a frame could not be turned into a model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PreprocessError {
    /// The buffer is shorter than `width × height` (or `stride × height`) pixels.
    FrameTooShort { needed: usize, got: usize },
    /// The square does not lie inside the frame, or is empty.
    SquareOutside,
}

impl core::fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PreprocessError::FrameTooShort { needed, got } => {
                write!(f, "frame buffer holds {got} bytes, {needed} needed")
            }
            PreprocessError::SquareOutside => f.write_str("face square lies outside the frame"),
        }
    }
}

/// Writes the Y (luma) bytes of a YUV 4:2:2 frame to `gray`: every other byte from `phase`
/// (0 for YUYV, `Y0 U Y1 V`; 1 for UYVY, `U Y0 V Y1`). Returns the number of pixels written:
/// at most `gray.len()`, and as many luma bytes as `yuv` holds.
pub fn luma_422(yuv: &[u8], phase: usize, gray: &mut [u8]) -> usize {
    let luma = yuv.get(phase..).unwrap_or(&[]).iter().step_by(2);
    let mut n = 0;
    for (dst, &y) in gray.iter_mut().zip(luma) {
        *dst = y;
        n += 1;
    }
    n
}

/// [`luma_422`] in place: moves the luma bytes of the 4:2:2 frame in `bytes` to its first
/// `pixels` bytes (at most as many luma bytes as it holds) and returns that gray plane. Reading
/// index `2i + phase` is never behind writing index `i`, so nothing is overwritten before it is
/// read.
pub fn luma_422_in_place(bytes: &mut [u8], phase: usize, pixels: usize) -> &[u8] {
    let pixels = pixels.min(bytes.len().saturating_sub(phase).div_ceil(2));
    for i in 0..pixels {
        bytes[i] = bytes[2 * i + phase];
    }
    &bytes[..pixels]
}

/// A gray frame: `width × height` pixels, rows `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub struct GrayFrame<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl<'a> GrayFrame<'a> {
    /// A tightly packed frame (`stride == width`).
    pub fn new(pixels: &'a [u8], width: usize, height: usize) -> Result<Self, PreprocessError> {
        Self::with_stride(pixels, width, height, width)
    }

    /// A frame whose rows are `stride ≥ width` bytes apart.
    pub fn with_stride(
        pixels: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
    ) -> Result<Self, PreprocessError> {
        let needed = if height == 0 {
            0
        } else {
            stride
                .max(width)
                .saturating_mul(height - 1)
                .saturating_add(width)
        };
        if pixels.len() < needed {
            return Err(PreprocessError::FrameTooShort {
                needed,
                got: pixels.len(),
            });
        }
        Ok(GrayFrame {
            pixels,
            width,
            height,
            stride: stride.max(width),
        })
    }

    #[inline]
    pub(crate) fn at(&self, x: usize, y: usize) -> u32 {
        u32::from(self.pixels[y * self.stride + x])
    }
}

/// Source position, in 1/256 pixel relative to the square's origin, of sub-sample `k` of `taps`
/// inside output pixel `d` (pixel centres at +0.5), clamped to the square.
#[inline]
fn source_pos(d: usize, k: usize, taps: usize, side: usize) -> usize {
    // Centre of sub-sample k in output units: d + (2k + 1) / (2 taps). In source pixels, times
    // side / 48, minus the half pixel of the source's centre convention.
    let num = (2 * (d * taps + k) + 1) * side * 256;
    let den = 2 * taps * SIDE;
    let pos = (num + den / 2) / den; // rounded, in 1/256 source pixels, +128
    pos.saturating_sub(128).min((side - 1) * 256)
}

/// Resamples `square` of `frame` to the 48x48 model input (row-major gray pixels).
///
/// # Errors
/// [`PreprocessError::SquareOutside`] when the square is empty or not inside the frame.
pub fn resize_to_input(
    frame: &GrayFrame<'_>,
    square: Square,
    out: &mut [u8; INPUT_PIXELS],
) -> Result<(), PreprocessError> {
    if !square.fits(frame.width, frame.height) {
        return Err(PreprocessError::SquareOutside);
    }
    let side = square.side;
    let taps = side.div_ceil(SIDE).clamp(1, MAX_TAPS);
    let samples = (taps * taps) as u32;
    for oy in 0..SIDE {
        for ox in 0..SIDE {
            let mut acc: u32 = 0;
            for ky in 0..taps {
                let py = source_pos(oy, ky, taps, side);
                let (y0, fy) = (py >> 8, (py & 0xff) as u32);
                let y1 = (y0 + 1).min(side - 1);
                for kx in 0..taps {
                    let px = source_pos(ox, kx, taps, side);
                    let (x0, fx) = (px >> 8, (px & 0xff) as u32);
                    let x1 = (x0 + 1).min(side - 1);
                    let (sx, sy) = (square.x, square.y);
                    let top =
                        frame.at(sx + x0, sy + y0) * (256 - fx) + frame.at(sx + x1, sy + y0) * fx;
                    let bottom =
                        frame.at(sx + x0, sy + y1) * (256 - fx) + frame.at(sx + x1, sy + y1) * fx;
                    // 8.16 fixed point: ≤ 255 · 65536 per tap, ≤ 64 taps: fits u32.
                    acc += top * (256 - fy) + bottom * fy;
                }
            }
            let denom = samples << 16;
            out[oy * SIDE + ox] = ((acc + denom / 2) / denom) as u8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_48_pixel_square_is_copied_exactly() {
        let px: [u8; 60 * 50] = core::array::from_fn(|i| (i * 7 % 251) as u8);
        let frame = GrayFrame::new(&px, 60, 50).unwrap();
        let sq = Square {
            x: 5,
            y: 2,
            side: 48,
        };
        let mut out = [0u8; INPUT_PIXELS];
        resize_to_input(&frame, sq, &mut out).unwrap();
        for y in 0..48 {
            for x in 0..48 {
                assert_eq!(out[y * 48 + x], px[(y + 2) * 60 + x + 5], "pixel {x},{y}");
            }
        }
    }

    #[test]
    fn a_flat_frame_stays_flat_at_every_scale() {
        for side in [1, 7, 47, 49, 96, 97, 200, 480] {
            let px = vec![173u8; side * side];
            let frame = GrayFrame::new(&px, side, side).unwrap();
            let mut out = [0u8; INPUT_PIXELS];
            resize_to_input(&frame, Square::centre(side, side), &mut out).unwrap();
            assert!(out.iter().all(|&p| p == 173), "side {side}");
        }
    }

    #[test]
    fn a_doubled_image_shrinks_back_to_the_original() {
        // Every source pixel repeated 2x2: the 2-tap average lands on the original values.
        let orig: [u8; INPUT_PIXELS] = core::array::from_fn(|i| (i * 31 % 256) as u8);
        let mut big = vec![0u8; 96 * 96];
        for y in 0..96 {
            for x in 0..96 {
                big[y * 96 + x] = orig[(y / 2) * 48 + x / 2];
            }
        }
        let frame = GrayFrame::new(&big, 96, 96).unwrap();
        let mut out = [0u8; INPUT_PIXELS];
        resize_to_input(&frame, Square::centre(96, 96), &mut out).unwrap();
        assert_eq!(out, orig);
    }

    #[test]
    fn a_horizontal_ramp_stays_monotonic_when_enlarged() {
        let px: Vec<u8> = (0..20 * 20).map(|i| ((i % 20) * 12) as u8).collect();
        let frame = GrayFrame::new(&px, 20, 20).unwrap();
        let mut out = [0u8; INPUT_PIXELS];
        resize_to_input(&frame, Square::centre(20, 20), &mut out).unwrap();
        for row in out.chunks_exact(48) {
            assert!(row.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!((row[0], row[47]), (0, 228));
        }
    }

    #[test]
    fn squares_outside_the_frame_and_short_buffers_are_errors() {
        let px = [0u8; 100];
        assert_eq!(
            GrayFrame::new(&px, 20, 20).unwrap_err(),
            PreprocessError::FrameTooShort {
                needed: 400,
                got: 100
            }
        );
        let frame = GrayFrame::new(&px, 10, 10).unwrap();
        let mut out = [0u8; INPUT_PIXELS];
        for sq in [
            Square {
                x: 5,
                y: 0,
                side: 6,
            },
            Square {
                x: 0,
                y: 0,
                side: 0,
            },
            Square {
                x: usize::MAX,
                y: 0,
                side: 2,
            },
        ] {
            assert_eq!(
                resize_to_input(&frame, sq, &mut out),
                Err(PreprocessError::SquareOutside)
            );
        }
    }

    #[test]
    fn around_grows_centres_and_clamps() {
        // 40x40 box at (100, 50), 25% margin → side 50, centred on (120, 70).
        assert_eq!(
            Square::around((100, 50, 40, 40), 25, 320, 240),
            Some(Square {
                x: 95,
                y: 45,
                side: 50
            })
        );
        // Near the corner: shifted inside.
        assert_eq!(
            Square::around((0, 0, 40, 40), 50, 320, 240),
            Some(Square {
                x: 0,
                y: 0,
                side: 60
            })
        );
        // Larger than the frame: the frame's short side, inside.
        let s = Square::around((300, 200, 100, 100), 20, 320, 240).unwrap();
        assert!(s.fits(320, 240) && s.side == 120);
        assert_eq!(Square::around((0, 0, 0, 5), 20, 320, 240), None);
        assert_eq!(Square::around((0, 0, 5, 5), 20, 0, 240), None);
    }

    #[test]
    fn yuyv_and_uyvy_keep_the_luma_bytes() {
        let yuyv = [10, 200, 11, 201, 12, 202, 13, 203];
        let uyvy = [200, 10, 201, 11, 202, 12, 203, 13];
        for (frame, phase) in [(yuyv, 0), (uyvy, 1)] {
            let mut gray = [0u8; 4];
            assert_eq!(luma_422(&frame, phase, &mut gray), 4);
            assert_eq!(gray, [10, 11, 12, 13]);
            let mut short = [0u8; 3];
            assert_eq!(luma_422(&frame, phase, &mut short), 3);
            assert_eq!(short, [10, 11, 12]);
        }
        for phase in [0, 1] {
            let mut bytes = if phase == 0 { yuyv } else { uyvy };
            assert_eq!(luma_422_in_place(&mut bytes, phase, 4), &[10, 11, 12, 13]);
            let mut bytes = if phase == 0 { yuyv } else { uyvy };
            assert_eq!(luma_422_in_place(&mut bytes, phase, 100).len(), 4);
        }
    }
}
