//! Turning 48x48 u8 faces into the network's float input, with the default recipe's augmentation.

use crate::data::{PIXELS, SIDE};
use crate::rng::Rng;

/// Scales a pixel to the network's input range: x / 255 (the paper's rescaling; DESIGN.md).
#[inline]
pub fn to_input(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// Appends `pixels` as network input (x/255) to `out`.
pub fn push_plain(pixels: &[u8; PIXELS], out: &mut Vec<f32>) {
    out.extend(pixels.iter().map(|&p| to_input(p)));
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
}
