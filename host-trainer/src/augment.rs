//! Turning 48x48 u8 faces into the network's float input, with the default recipe's augmentation.

use serde::{Deserialize, Serialize};

use fer_dataset::data::{PIXELS, SIDE};
use fer_dataset::rng::Rng;

/// Scales a pixel to the network's input range: x / 255 (the paper's rescaling; docs/design.md).
#[inline]
pub fn to_input(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// Appends `pixels` as network input (x/255) to `out`.
pub fn push_plain(pixels: &[u8; PIXELS], out: &mut Vec<f32>) {
    out.extend(pixels.iter().map(|&p| to_input(p)));
}

/// Appends the mirror image of `pixels` (flipped left to right) as network input to `out`.
pub fn push_mirrored(pixels: &[u8; PIXELS], out: &mut Vec<f32>) {
    for row in pixels.chunks_exact(SIDE) {
        out.extend(row.iter().rev().map(|&p| to_input(p)));
    }
}

/// Appends an augmented copy of `pixels` to `out`: a horizontal flip with probability 1/2 (if
/// `flip`), then a translation by up to `max_shift` pixels in x and y, repeating edge pixels.
pub fn push_augmented(
    pixels: &[u8; PIXELS],
    flip: bool,
    max_shift: usize,
    rng: &mut Rng,
    out: &mut Vec<f32>,
) {
    let mirrored = flip && rng.below(2) == 1;
    let span = 2 * max_shift + 1;
    let dx = rng.below(span) as isize - max_shift as isize;
    let dy = rng.below(span) as isize - max_shift as isize;
    let last = SIDE as isize - 1;
    for y in 0..SIDE as isize {
        let sy = (y - dy).clamp(0, last) as usize;
        for x in 0..SIDE as isize {
            let mut sx = (x - dx).clamp(0, last);
            if mirrored {
                sx = last - sx;
            }
            out.push(to_input(pixels[sy * SIDE + sx as usize]));
        }
    }
}

/// Random distortions of a face, drawn anew for each image: a rotation, zoom and translation
/// about the centre (bilinear, edge pixels repeated), contrast and brightness jitter, and one
/// erased rectangle filled with noise. Every range is symmetric and uniform.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distort {
    /// Rotation in degrees, in [-rotate_deg, rotate_deg].
    pub rotate_deg: f64,
    /// Zoom factor in [1 - zoom, 1 + zoom] (above 1 magnifies).
    pub zoom: f64,
    /// Translation in pixels, in [-shift, shift] along x and y.
    pub shift: f64,
    /// Contrast factor about the image's mean, in [1 - contrast, 1 + contrast].
    pub contrast: f64,
    /// Brightness offset in input units (1 = white), in [-brightness, brightness].
    pub brightness: f64,
    /// Probability of erasing one rectangle.
    pub erase_p: f64,
    /// Its area as a fraction of the image, in [erase_area.0, erase_area.1]; its aspect ratio in
    /// [0.3, 3.3] (log-uniform), as in Zhong et al.'s random erasing.
    pub erase_area: (f64, f64),
}

/// Uniform in [-r, r].
fn symmetric(rng: &mut Rng, r: f64) -> f64 {
    (2.0 * rng.unit() - 1.0) * r
}

/// Appends a distorted copy of `pixels` to `out` (see [`Distort`]), mirrored with probability
/// 1/2 if `flip`.
pub fn push_distorted(
    pixels: &[u8; PIXELS],
    flip: bool,
    d: &Distort,
    rng: &mut Rng,
    out: &mut Vec<f32>,
) {
    let warp = Warp {
        mirrored: flip && rng.below(2) == 1,
        angle_deg: symmetric(rng, d.rotate_deg),
        zoom: 1.0 + symmetric(rng, d.zoom),
        shift: (symmetric(rng, d.shift), symmetric(rng, d.shift)),
        contrast: 1.0 + symmetric(rng, d.contrast),
        brightness: symmetric(rng, d.brightness),
    };
    let start = out.len();
    warp.push(pixels, out);
    if d.erase_p > 0.0 && rng.unit() < d.erase_p {
        let area =
            (d.erase_area.0 + rng.unit() * (d.erase_area.1 - d.erase_area.0)) * PIXELS as f64;
        let ratio = (0.3f64.ln() + rng.unit() * (3.3f64.ln() - 0.3f64.ln())).exp();
        let h = ((area * ratio).sqrt().round() as usize).clamp(1, SIDE);
        let w = ((area / ratio).sqrt().round() as usize).clamp(1, SIDE);
        let y0 = rng.below(SIDE - h + 1);
        let x0 = rng.below(SIDE - w + 1);
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                out[start + y * SIDE + x] = rng.unit() as f32;
            }
        }
    }
}

/// One drawn distortion of one image (see [`Distort`]).
struct Warp {
    mirrored: bool,
    angle_deg: f64,
    zoom: f64,
    shift: (f64, f64),
    contrast: f64,
    brightness: f64,
}

impl Warp {
    /// Appends the warped image, as network input, to `out`.
    fn push(&self, pixels: &[u8; PIXELS], out: &mut Vec<f32>) {
        // Output pixel -> source point: undo the translation, the rotation and the zoom about
        // the centre; a mirrored image reads the source at the mirrored x.
        let (sin, cos) = self.angle_deg.to_radians().sin_cos();
        let (sin, cos, inv) = (sin as f32, cos as f32, (1.0 / self.zoom) as f32);
        let (tx, ty) = (self.shift.0 as f32, self.shift.1 as f32);
        let (contrast, brightness) = (self.contrast as f32, self.brightness as f32);
        let centre = (SIDE as f32 - 1.0) / 2.0;
        let last = SIDE as f32 - 1.0;
        let mean =
            pixels.iter().map(|&p| u32::from(p)).sum::<u32>() as f32 / (PIXELS as f32 * 255.0);
        for y in 0..SIDE {
            let v = y as f32 - centre - ty;
            for x in 0..SIDE {
                let u = x as f32 - centre - tx;
                let mut sx = (cos * u + sin * v) * inv + centre;
                let sy = (-sin * u + cos * v) * inv + centre;
                if self.mirrored {
                    sx = last - sx;
                }
                let value = bilinear(pixels, sx.clamp(0.0, last), sy.clamp(0.0, last));
                out.push(((value - mean) * contrast + mean + brightness).clamp(0.0, 1.0));
            }
        }
    }
}

/// The image at a point inside it, bilinearly interpolated, as network input (x/255).
fn bilinear(pixels: &[u8; PIXELS], x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(SIDE - 1), (y0 + 1).min(SIDE - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |xx: usize, yy: usize| to_input(pixels[yy * SIDE + xx]);
    let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
    let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
    top + (bottom - top) * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_augmentation_is_identity_and_flip_mirrors() {
        let mut img = [0u8; PIXELS];
        for (i, p) in img.iter_mut().enumerate() {
            *p = (i % 251) as u8;
        }
        let mut plain = Vec::new();
        push_plain(&img, &mut plain);
        let mut same = Vec::new();
        push_augmented(&img, false, 0, &mut Rng::new(1), &mut same);
        assert_eq!(plain, same);

        // Find a seed that flips, with zero shift; the result must be the mirror image.
        let mut flipped_seen = false;
        for seed in 0..20 {
            let mut out = Vec::new();
            push_augmented(&img, true, 0, &mut Rng::new(seed), &mut out);
            if out != plain {
                flipped_seen = true;
                for y in 0..SIDE {
                    for x in 0..SIDE {
                        assert_eq!(out[y * SIDE + x], plain[y * SIDE + SIDE - 1 - x]);
                    }
                }
                let mut mirrored = Vec::new();
                push_mirrored(&img, &mut mirrored);
                assert_eq!(out, mirrored);
            }
        }
        assert!(flipped_seen);
    }

    #[test]
    fn shift_moves_content_within_bounds() {
        let mut img = [0u8; PIXELS];
        img[20 * SIDE + 20] = 255;
        for seed in 0..50 {
            let mut out = Vec::new();
            push_augmented(&img, false, 3, &mut Rng::new(seed), &mut out);
            let pos = out
                .iter()
                .position(|&v| v == 1.0)
                .expect("bright pixel kept");
            let (y, x) = ((pos / SIDE) as isize, (pos % SIDE) as isize);
            assert!((y - 20).abs() <= 3 && (x - 20).abs() <= 3);
        }
    }

    const NONE: Distort = Distort {
        rotate_deg: 0.0,
        zoom: 0.0,
        shift: 0.0,
        contrast: 0.0,
        brightness: 0.0,
        erase_p: 0.0,
        erase_area: (0.0, 0.0),
    };

    fn gradient_image() -> [u8; PIXELS] {
        let mut img = [0u8; PIXELS];
        for (i, p) in img.iter_mut().enumerate() {
            *p = ((i % SIDE) * 5 + (i / SIDE)) as u8;
        }
        img
    }

    #[test]
    fn distortion_of_zero_is_identity_and_flip_mirrors() {
        let img = gradient_image();
        let mut plain = Vec::new();
        push_plain(&img, &mut plain);
        let mut same = Vec::new();
        push_distorted(&img, false, &NONE, &mut Rng::new(3), &mut same);
        for (a, b) in plain.iter().zip(&same) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let mut mirrored_seen = false;
        for seed in 0..20 {
            let mut out = Vec::new();
            push_distorted(&img, true, &NONE, &mut Rng::new(seed), &mut out);
            if (out[0] - plain[0]).abs() > 1e-6 {
                mirrored_seen = true;
                for y in 0..SIDE {
                    for x in 0..SIDE {
                        let want = plain[y * SIDE + SIDE - 1 - x];
                        assert!((out[y * SIDE + x] - want).abs() < 1e-6);
                    }
                }
            }
        }
        assert!(mirrored_seen);
    }

    #[test]
    fn a_quarter_turn_moves_a_corner_to_the_next() {
        let mut img = [0u8; PIXELS];
        img[0] = 255; // top-left corner
        for (angle_deg, corner) in [(90.0, SIDE - 1), (-90.0, PIXELS - SIDE)] {
            let warp = Warp {
                mirrored: false,
                angle_deg,
                zoom: 1.0,
                shift: (0.0, 0.0),
                contrast: 1.0,
                brightness: 0.0,
            };
            let mut out = Vec::new();
            warp.push(&img, &mut out);
            assert!(
                (out[corner] - 1.0).abs() < 1e-4,
                "{angle_deg} degrees: {}",
                out[corner]
            );
            let lit = out.iter().filter(|&&v| v > 1e-3).count();
            assert_eq!(lit, 1, "{angle_deg} degrees: one bright pixel");
            // A zoom of 2 magnifies: the corner pixel's value spreads to no corner.
            let zoomed = Warp { zoom: 2.0, ..warp };
            let mut out = Vec::new();
            zoomed.push(&img, &mut out);
            assert!(out[corner] < 0.5 && out[0] < 0.5);
        }
    }

    #[test]
    fn erasing_covers_a_rectangle_of_the_asked_area() {
        let img = [128u8; PIXELS];
        let d = Distort {
            erase_p: 1.0,
            erase_area: (0.1, 0.1),
            ..NONE
        };
        for seed in 0..30 {
            let mut out = Vec::new();
            push_distorted(&img, false, &d, &mut Rng::new(seed), &mut out);
            let changed = out
                .iter()
                .filter(|&&v| (v - 128.0 / 255.0).abs() > 1e-6)
                .count();
            // 10% of 2,304 pixels, give or take the rounding of both sides (and noise that
            // happens to hit the grey value).
            assert!((150..=300).contains(&changed), "{changed} pixels erased");
        }
    }

    #[test]
    fn jitter_keeps_the_input_range() {
        let img = gradient_image();
        let d = Distort {
            contrast: 0.5,
            brightness: 0.5,
            rotate_deg: 15.0,
            zoom: 0.2,
            shift: 5.0,
            ..NONE
        };
        for seed in 0..30 {
            let mut out = Vec::new();
            push_distorted(&img, true, &d, &mut Rng::new(seed), &mut out);
            assert_eq!(out.len(), PIXELS);
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}
