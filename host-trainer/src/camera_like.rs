//! Camera-like degradations of a raw 48x48 face (a recipe's `camera` part): lens blur, a face
//! too small for the crop (shrunk, then enlarged back), sensor noise and JPEG compression, each
//! drawn per image. They act on the raw pixels, before the light rule, as a camera's frame
//! reaches the pipeline; the rule is applied after them (`crate::batches`).
//!
//! (A gamma or exposure change is not among them: the published light rule, histogram
//! equalization, maps every monotone change of the gray levels to nearly the same face.)

use fer_dataset::data::{PIXELS, SIDE};
use fer_dataset::rng::Rng;

use crate::recipe::Camera;

/// Applies `c`'s degradations to `px` in place, each with its probability: blur, small face,
/// noise, JPEG (a camera's order: optics, resolution, sensor, encoder).
pub fn degrade(px: &mut [u8; PIXELS], c: &Camera, rng: &mut Rng) {
    if c.blur_p > 0.0 && rng.unit() < c.blur_p {
        blur(px);
    }
    if c.lowres_p > 0.0 && rng.unit() < c.lowres_p {
        let (lo, hi) = c.lowres_side;
        let side = lo + rng.below(hi - lo + 1);
        shrink_and_enlarge(px, side);
    }
    if c.noise > 0.0 {
        let sd = rng.unit() * c.noise;
        add_noise(px, sd, rng);
    }
    if c.jpeg_p > 0.0 && rng.unit() < c.jpeg_p {
        let (lo, hi) = c.jpeg_quality;
        let q = lo + rng.below(usize::from(hi - lo) + 1) as u8;
        jpeg_round_trip(px, q);
    }
}

/// The 3x3 binomial filter `[1 2 1]ᵀ[1 2 1] / 16`, edges repeated, rounded.
pub fn blur(px: &mut [u8; PIXELS]) {
    let src = *px;
    let at = |x: isize, y: isize| {
        let c = |v: isize| v.clamp(0, SIDE as isize - 1) as usize;
        u32::from(src[c(y) * SIDE + c(x)])
    };
    for y in 0..SIDE as isize {
        for x in 0..SIDE as isize {
            let mut acc = 0;
            for (dy, wy) in [(-1, 1), (0, 2), (1, 1)] {
                for (dx, wx) in [(-1, 1), (0, 2), (1, 1)] {
                    acc += wy * wx * at(x + dx, y + dy);
                }
            }
            px[y as usize * SIDE + x as usize] = ((acc + 8) / 16) as u8;
        }
    }
}

/// The face shrunk to `side × side` by averaging (area) and enlarged back to 48x48 bilinearly.
pub fn shrink_and_enlarge(px: &mut [u8; PIXELS], side: usize) {
    let img =
        image::GrayImage::from_raw(SIDE as u32, SIDE as u32, px.to_vec()).expect("48x48 gray");
    let small = image::imageops::resize(
        &img,
        side as u32,
        side as u32,
        image::imageops::FilterType::Triangle,
    );
    let back = image::imageops::resize(
        &small,
        SIDE as u32,
        SIDE as u32,
        image::imageops::FilterType::Triangle,
    );
    px.copy_from_slice(back.as_raw());
}

/// Gaussian noise of standard deviation `sd` gray levels (Box-Muller), clamped to 0-255.
pub fn add_noise(px: &mut [u8; PIXELS], sd: f64, rng: &mut Rng) {
    if sd <= 0.0 {
        return;
    }
    for p in px.iter_mut() {
        let (u, v) = (rng.unit().max(f64::MIN_POSITIVE), rng.unit());
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        *p = (f64::from(*p) + sd * z).round().clamp(0.0, 255.0) as u8;
    }
}

/// The face encoded as a baseline gray JPEG at `quality` and decoded back.
pub fn jpeg_round_trip(px: &mut [u8; PIXELS], quality: u8) {
    let mut bytes = Vec::new();
    let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode(
        &px[..],
        SIDE as u32,
        SIDE as u32,
        image::ExtendedColorType::L8,
    );
    // An in-memory encode of a valid 48x48 gray image does not fail; if it ever did, the face
    // stays as it was.
    if encoded.is_err() {
        return;
    }
    if let Ok(img) = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg) {
        let gray = img.to_luma8();
        if gray.dimensions() == (SIDE as u32, SIDE as u32) {
            px.copy_from_slice(gray.as_raw());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> [u8; PIXELS] {
        // A smooth face-like pattern with an edge, plus a checkered texture.
        core::array::from_fn(|i| {
            let (x, y) = (i % SIDE, i / SIDE);
            let base = 60 + 3 * x + 2 * y;
            let edge = if x > 24 { 40 } else { 0 };
            let tex = if (x + y) % 2 == 0 { 10 } else { 0 };
            (base + edge + tex).min(255) as u8
        })
    }

    fn energy(px: &[u8; PIXELS]) -> u64 {
        // Sum of squared differences between horizontal neighbours: high-frequency content.
        px.chunks_exact(SIDE)
            .flat_map(|r| {
                r.windows(2)
                    .map(|w| (i64::from(w[0]) - i64::from(w[1])).pow(2))
            })
            .sum::<i64>() as u64
    }

    #[test]
    fn blur_and_small_faces_remove_fine_detail_and_keep_flat_areas() {
        let f = face();
        let mut b = f;
        blur(&mut b);
        assert!(
            energy(&b) < energy(&f) / 2,
            "{} vs {}",
            energy(&b),
            energy(&f)
        );
        let mut s = f;
        shrink_and_enlarge(&mut s, 20);
        assert!(energy(&s) < energy(&f) / 2);
        let mut flat = [123u8; PIXELS];
        blur(&mut flat);
        shrink_and_enlarge(&mut flat, 24);
        assert!(flat.iter().all(|&p| p.abs_diff(123) <= 1));
    }

    #[test]
    fn noise_has_the_asked_spread_and_jpeg_stays_close_at_high_quality() {
        let mut n = [128u8; PIXELS];
        add_noise(&mut n, 8.0, &mut Rng::new(5));
        let mean = n.iter().map(|&p| f64::from(p)).sum::<f64>() / PIXELS as f64;
        let sd = (n
            .iter()
            .map(|&p| (f64::from(p) - mean).powi(2))
            .sum::<f64>()
            / PIXELS as f64)
            .sqrt();
        assert!(
            (mean - 128.0).abs() < 1.0 && (sd - 8.0).abs() < 0.8,
            "{mean} {sd}"
        );
        let f = face();
        let mut hi = f;
        jpeg_round_trip(&mut hi, 95);
        let mut lo = f;
        jpeg_round_trip(&mut lo, 10);
        let err = |a: &[u8; PIXELS]| -> u64 {
            a.iter()
                .zip(&f)
                .map(|(&p, &q)| u64::from(p.abs_diff(q)))
                .sum()
        };
        assert!(err(&hi) < err(&lo), "{} vs {}", err(&hi), err(&lo));
        assert!((err(&hi) as f64 / PIXELS as f64) < 4.0);
    }

    #[test]
    fn degrade_draws_each_effect_with_its_probability() {
        let none = Camera::OFF;
        let f = face();
        let mut same = f;
        degrade(&mut same, &none, &mut Rng::new(1));
        assert_eq!(same, f, "nothing on: the face is untouched");
        let always_blur = Camera {
            blur_p: 1.0,
            ..none
        };
        let mut b = f;
        degrade(&mut b, &always_blur, &mut Rng::new(1));
        let mut want = f;
        blur(&mut want);
        assert_eq!(b, want);
        // Half the faces get a JPEG round trip.
        let half = Camera {
            jpeg_p: 0.5,
            ..none
        };
        let mut rng = Rng::new(9);
        let changed = (0..200)
            .filter(|_| {
                let mut p = f;
                degrade(&mut p, &half, &mut rng);
                p != f
            })
            .count();
        assert!((70..=130).contains(&changed), "{changed}");
    }
}
