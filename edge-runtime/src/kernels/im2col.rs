//! Builds the input patch of one pool quad (im2col) in the layout [`super::patch`] describes:
//! the four conv outputs' 3x3 x cin windows as int16 `x − zero_point`, 0 outside the image.

use super::patch::{offset, padded_len, patch_bytes};

/// Writes the patch of the quad whose top-left conv output is `(y0, x0)` of an `h × w × cin`
/// HWC `input` with zero point `zero` into `out` (at least [`patch_bytes`]`(cin)` bytes). Every
/// value is written (the taps outside the image and the padding as 0), so `out` needs no
/// clearing between quads.
pub fn fill(
    input: &[i8],
    (h, w, cin): (usize, usize, usize),
    zero: i32,
    (y0, x0): (usize, usize),
    out: &mut [i8],
) {
    let out = &mut out[..patch_bytes(cin)];
    if !cin.is_multiple_of(4) {
        // Written value by value below: clear the borders and the padding first.
        out.fill(0);
    }
    for r in 0..4 {
        let (y, x) = (y0 + r / 2, x0 + r % 2);
        // Kernel columns inside the image: kx in kx0..kx1, i.e. input columns x + kx − 1.
        let kx0 = usize::from(x == 0);
        let kx1 = if x + 1 >= w { 2 } else { 3 };
        for ky in 0..3 {
            // Input row y + ky − 1; outside the image the values are 0.
            let iy = (y + ky).checked_sub(1).filter(|&iy| iy < h);
            let base = ky * 3 * cin;
            if cin.is_multiple_of(4) {
                // The inside taps of a kernel row are contiguous in the input and in the patch:
                // one run, with zero runs for the columns outside.
                let Some(iy) = iy else {
                    runs(out, r, base, 3 * cin, None, zero);
                    continue;
                };
                let src = &input[(iy * w + x + kx0 - 1) * cin..][..(kx1 - kx0) * cin];
                runs(out, r, base, kx0 * cin, None, zero);
                runs(out, r, base + kx0 * cin, src.len(), Some(src), zero);
                runs(out, r, base + kx1 * cin, (3 - kx1) * cin, None, zero);
            } else if let Some(iy) = iy {
                for kx in kx0..kx1 {
                    let src = &input[(iy * w + x + kx - 1) * cin..][..cin];
                    for (c, &v) in src.iter().enumerate() {
                        let b = ((i32::from(v) - zero) as i16).to_le_bytes();
                        let at = offset(r, base + kx * cin + c);
                        out[at] = b[0] as i8;
                        out[at + 1] = b[1] as i8;
                    }
                }
            }
        }
        if cin.is_multiple_of(4) {
            runs(out, r, 9 * cin, padded_len(cin) - 9 * cin, None, zero);
        }
    }
}

/// Writes four vectors of `n` int8 values (`n` a multiple of 4) as the four rows of a patch:
/// value `i` of `rows[r]` becomes `rows[r][i] − zero` at [`super::patch::offset`]`(r, i)`. The
/// pointwise layers of the CNN face detector multiply four pixels' channels this way.
pub fn fill_rows(rows: [&[i8]; 4], zero: i32, out: &mut [i8]) {
    for (r, src) in rows.iter().enumerate() {
        debug_assert!(src.len().is_multiple_of(4));
        runs(out, r, 0, src.len(), Some(src), zero);
    }
}

/// Values `base .. base + len` of row `r` (`base` and `len` multiples of 4): `src[i] − zero`,
/// or 0 without `src`. Runs of four values are contiguous in every layout (`GROUP` is a
/// multiple of 4).
fn runs(out: &mut [i8], r: usize, base: usize, len: usize, src: Option<&[i8]>, zero: i32) {
    if len == 0 {
        return;
    }
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        // One group per run, 32 bytes apart (four rows of 8 bytes).
        let dst = &mut out[offset(r, base)..];
        match src {
            Some(src) => super::dsp::widen_groups(src, zero, dst),
            None => {
                for d in dst.chunks_mut(32).take(len / 4) {
                    d[..8].fill(0);
                }
            }
        }
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    for c in 0..len / 4 {
        let at = offset(r, base + 4 * c);
        let d = &mut out[at..at + 8];
        match src {
            Some(src) => {
                for (pair, &v) in d.chunks_exact_mut(2).zip(&src[4 * c..4 * c + 4]) {
                    let b = ((i32::from(v) - zero) as i16).to_le_bytes();
                    pair[0] = b[0] as i8;
                    pair[1] = b[1] as i8;
                }
            }
            None => d.fill(0),
        }
    }
}

/// The raw int8 patch of the quad at `(y0, x0)` for a dot-product kernel that subtracts the
/// zero point's share afterwards (aarch64 `SDOT`): four rows of `row_len` bytes (at least
/// `9·cin`), each the four conv inputs' `[ky][kx][cin]` values as they are, with the zero point
/// itself for the taps outside the image (the real value 0) and 0 past `9·cin`.
#[cfg(target_arch = "aarch64")]
pub(crate) fn fill_raw(
    input: &[i8],
    (h, w, cin): (usize, usize, usize),
    zero: i32,
    (y0, x0): (usize, usize),
    row_len: usize,
    out: &mut [i8],
) {
    let z = zero as i8;
    for r in 0..4 {
        let (y, x) = (y0 + r / 2, x0 + r % 2);
        let row = &mut out[r * row_len..(r + 1) * row_len];
        let kx0 = usize::from(x == 0);
        let kx1 = if x + 1 >= w { 2 } else { 3 };
        for ky in 0..3 {
            let dst = &mut row[ky * 3 * cin..(ky + 1) * 3 * cin];
            match (y + ky).checked_sub(1).filter(|&iy| iy < h) {
                Some(iy) => {
                    dst[..kx0 * cin].fill(z);
                    let src = &input[(iy * w + x + kx0 - 1) * cin..][..(kx1 - kx0) * cin];
                    dst[kx0 * cin..kx1 * cin].copy_from_slice(src);
                    dst[kx1 * cin..].fill(z);
                }
                None => dst.fill(z),
            }
        }
        row[9 * cin..].fill(0);
    }
}
