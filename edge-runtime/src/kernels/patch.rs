//! The input patch of one pool quad (im2col): for each of the four conv outputs that one 2x2 max
//! pool reads, its 3x3 x cin input window as int16 values `x − zero_point`, with 0 for the taps
//! outside the image (the real value 0). With the zero point subtracted here, borders and the
//! zero point's share of the sum disappear from the dot products, which become plain
//! [`super::quad`] products of the patch with a channel's weights.
//!
//! Layout: four rows of [`padded_len`] int16 values, little-endian, in a byte buffer (the arena
//! is bytes), interleaved by groups of [`GROUP`] values — group 0 of rows 0, 1, 2, 3, then group
//! 1 of each, and so on — so a kernel reads one contiguous stream while it walks the weights
//! once. Values are in the weights' `[ky][kx][cin]` order, except that the `SMLAD` kernel's
//! groups hold `v0 v2 v1 v3` (it pairs weight bytes 0 and 2, and 1 and 3, of a word). Values
//! past `9·cin` are 0. [`offset`] says where each value is.

/// Whether each group of four values is stored as `v0 v2 v1 v3` (the `SMLAD` kernel's pairing).
pub const INTERLEAVED: bool = cfg!(all(feature = "dsp", target_arch = "arm"));

/// Values of one row per group: one weight word for the `SMLAD` kernel, eight for the 16-byte
/// SIMD kernels.
pub const GROUP: usize = if INTERLEAVED { 4 } else { 8 };

/// Values per patch row: `9·cin` rounded up to a multiple of 8 (whole groups).
#[inline]
pub const fn padded_len(cin: usize) -> usize {
    (9 * cin).div_ceil(8) * 8
}

/// Bytes of a quad's patch: four rows of int16 values.
#[inline]
pub const fn patch_bytes(cin: usize) -> usize {
    4 * 2 * padded_len(cin)
}

/// Byte offset of value `i` of row `r`.
#[inline]
pub const fn offset(r: usize, i: usize) -> usize {
    let (g, j) = (i / GROUP, i % GROUP);
    let j = if INTERLEAVED { [0, 2, 1, 3][j] } else { j };
    2 * ((g * 4 + r) * GROUP + j)
}

/// Writes the patch of the quad whose top-left conv output is `(y0, x0)` of an `h × w × cin`
/// HWC `input` with zero point `zero` into `out` (at least [`patch_bytes`]`(cin)` bytes).
pub fn fill(
    input: &[i8],
    (h, w, cin): (usize, usize, usize),
    zero: i32,
    (y0, x0): (usize, usize),
    out: &mut [i8],
) {
    let out = &mut out[..patch_bytes(cin)];
    out.fill(0);
    for r in 0..4 {
        let (y, x) = (y0 + r / 2, x0 + r % 2);
        for ky in 0..3 {
            // Input row y + ky − 1; outside the image the values stay 0.
            let Some(iy) = (y + ky).checked_sub(1).filter(|&iy| iy < h) else {
                continue;
            };
            for kx in 0..3 {
                let Some(ix) = (x + kx).checked_sub(1).filter(|&ix| ix < w) else {
                    continue;
                };
                let src = &input[(iy * w + ix) * cin..][..cin];
                let base = (ky * 3 + kx) * cin;
                if cin % 4 == 0 {
                    // Runs of four values are contiguous in every layout (base is a multiple
                    // of 4, and so is GROUP).
                    for (c, s) in src.chunks_exact(4).enumerate() {
                        let v = if INTERLEAVED {
                            [s[0], s[2], s[1], s[3]]
                        } else {
                            [s[0], s[1], s[2], s[3]]
                        };
                        let at = offset(r, base + 4 * c);
                        for (pair, v) in out[at..at + 8].chunks_exact_mut(2).zip(v) {
                            let b = ((i32::from(v) - zero) as i16).to_le_bytes();
                            pair[0] = b[0] as i8;
                            pair[1] = b[1] as i8;
                        }
                    }
                } else {
                    for (c, &v) in src.iter().enumerate() {
                        let b = ((i32::from(v) - zero) as i16).to_le_bytes();
                        let at = offset(r, base + c);
                        out[at] = b[0] as i8;
                        out[at + 1] = b[1] as i8;
                    }
                }
            }
        }
    }
}

/// Value `i` of row `r` of a patch.
#[inline]
pub fn value(patch: &[i8], r: usize, i: usize) -> i32 {
    let at = offset(r, i);
    i32::from(i16::from_le_bytes([patch[at] as u8, patch[at + 1] as u8]))
}
