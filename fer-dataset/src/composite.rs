//! Camera-like frames: real FER-2013 faces, upscaled and pasted at known places into larger
//! frames over varied synthetic backgrounds or real textures, and frames with no face. Seeded:
//! the same frames on every machine (the data set's SplitMix64 generator). Used by the face
//! detection checks and to calibrate the CNN face detector.

use std::path::Path;

use anyhow::{ensure, Result};

use crate::data::{Sample, SIDE};

/// A gray frame with the boxes of the faces pasted into it.
pub struct Composite {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    /// (x, y, side) of each pasted face, and the index of its sample.
    pub faces: Vec<(usize, usize, usize, usize)>,
}

pub use crate::rng::Rng;

/// Synthetic background kinds: smooth gradient, blotchy value noise, stripes, checkerboard, flat
/// with sensor noise. Kinds past these crop a real texture photo ([`textures`]).
pub const SYNTHETIC: usize = 5;

/// The real texture photos of `dir` (the project's `fer-checks/data/photos`: brick, grass, gravel;
/// CC0), 512x512 gray each.
pub fn textures(dir: &Path) -> Result<Vec<Vec<u8>>> {
    ["brick", "grass", "gravel"]
        .iter()
        .map(|n| {
            let path = dir.join(format!("{n}.jpg"));
            let img = crate::safe_read::read_image(&path)?.to_luma8();
            ensure!(
                img.dimensions() == (512, 512),
                "{}: a texture must be 512x512, is {}x{}",
                crate::safe_read::shown_path(&path),
                img.width(),
                img.height()
            );
            Ok(img.into_raw())
        })
        .collect()
}

/// A `w × h` (at most 512x512) background: one of the synthetic kinds or a random crop of one of
/// `textures`, chosen at random.
pub fn background(w: usize, h: usize, textures: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let kind = rng.below(SYNTHETIC + textures.len());
    if kind >= SYNTHETIC {
        let t = &textures[kind - SYNTHETIC];
        let (x0, y0) = (rng.below(512 - w + 1), rng.below(512 - h + 1));
        return (0..h)
            .flat_map(|y| {
                t[(y0 + y) * 512 + x0..(y0 + y) * 512 + x0 + w]
                    .iter()
                    .copied()
            })
            .collect();
    }
    let mut px = vec![0u8; w * h];
    let a = 40 + rng.below(120);
    let b = 40 + rng.below(120);
    let period = 6 + rng.below(30);
    let grid: Vec<u8> = (0..64).map(|_| (30 + rng.below(200)) as u8).collect();
    for y in 0..h {
        for x in 0..w {
            let v = match kind {
                0 => a + (b * x + (255 - b) * y) / (w + h),
                1 => {
                    // Bilinear value noise on an 8x8 grid.
                    let (gx, gy) = (x * 7 * 256 / w, y * 7 * 256 / h);
                    let (ix, iy, fx, fy) = (gx >> 8, gy >> 8, gx & 255, gy & 255);
                    let g = |i: usize, j: usize| usize::from(grid[j * 8 + i]);
                    let top = g(ix, iy) * (256 - fx) + g(ix + 1, iy) * fx;
                    let bot = g(ix, iy + 1) * (256 - fx) + g(ix + 1, iy + 1) * fx;
                    (top * (256 - fy) + bot * fy) >> 16
                }
                2 => {
                    if ((x + y / 2) / period).is_multiple_of(2) {
                        a
                    } else {
                        b
                    }
                }
                3 => {
                    if (x / period + y / period).is_multiple_of(2) {
                        a
                    } else {
                        b
                    }
                }
                _ => a + rng.below(24),
            };
            px[y * w + x] = v.min(255) as u8;
        }
    }
    px
}

/// Pastes `face` (48x48) scaled to `side` (bilinear) at `(x0, y0)`.
pub fn paste(px: &mut [u8], w: usize, face: &[u8], x0: usize, y0: usize, side: usize) {
    let img = image::GrayImage::from_raw(SIDE as u32, SIDE as u32, face.to_vec()).expect("48x48");
    paste_image(px, w, &img, x0, y0, side);
}

/// Pastes a square gray picture of any size scaled to `side` (bilinear) at `(x0, y0)`.
pub fn paste_image(
    px: &mut [u8],
    w: usize,
    img: &image::GrayImage,
    x0: usize,
    y0: usize,
    side: usize,
) {
    let big = image::imageops::resize(
        img,
        side as u32,
        side as u32,
        image::imageops::FilterType::Triangle,
    );
    for y in 0..side {
        for x in 0..side {
            px[(y0 + y) * w + x0 + x] = big.get_pixel(x as u32, y as u32).0[0];
        }
    }
}

/// A `w × h` frame with one face of `samples[index]` of a random side in `min..=max`, at a
/// random place, over a random background.
pub fn one_face(
    samples: &[Sample],
    index: usize,
    w: usize,
    h: usize,
    (min, max): (usize, usize),
    textures: &[Vec<u8>],
    rng: &mut Rng,
) -> Composite {
    let mut pixels = background(w, h, textures, rng);
    let side = min + rng.below(max - min + 1);
    let (x0, y0) = (rng.below(w - side + 1), rng.below(h - side + 1));
    paste(&mut pixels, w, &samples[index].pixels[..], x0, y0, side);
    Composite {
        width: w,
        height: h,
        pixels,
        faces: vec![(x0, y0, side, index)],
    }
}

/// A `w × h` frame with no face.
pub fn no_face(w: usize, h: usize, textures: &[Vec<u8>], rng: &mut Rng) -> Composite {
    Composite {
        width: w,
        height: h,
        pixels: background(w, h, textures, rng),
        faces: Vec::new(),
    }
}
