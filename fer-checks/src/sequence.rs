//! Recorded-camera sequences made from real faces: a still camera looking at one face for a while,
//! then at another face with another expression in the same place (a real change of label), with
//! what a camera adds from frame to frame: sensor noise, auto-exposure flicker and a pixel or two
//! of head movement. Seeded: the same frames on every machine.

use fer_dataset::composite::{background, paste_image, Rng};

/// Frames of a still face that changes once.
pub struct Sequence {
    pub width: usize,
    pub height: usize,
    pub frames: Vec<Vec<u8>>,
    /// Index of the first frame of the second face.
    pub change_at: usize,
}

/// Camera frame size of the sequences (QVGA, as the boards and the Pi's preview use).
pub const FRAME: (usize, usize) = (320, 240);

/// Side of the pasted face, in pixels: a face half a metre from a QVGA camera.
pub const FACE_SIDE: usize = 120;

/// `each` frames of `first` then `each` frames of `second` (square gray pictures of a face, of
/// any size: FER-2013's 48x48 crops or a photo's face crop), pasted at the same place over one
/// background, each frame with its own noise, exposure and movement.
pub fn still_face_changing_once(
    first: &image::GrayImage,
    second: &image::GrayImage,
    each: usize,
    textures: &[Vec<u8>],
    rng: &mut Rng,
) -> Sequence {
    let (w, h) = FRAME;
    let back = background(w, h, textures, rng);
    let (x0, y0) = ((w - FACE_SIDE) / 2, (h - FACE_SIDE) / 2);
    let mut frames = Vec::with_capacity(2 * each);
    for i in 0..2 * each {
        let face = if i < each { first } else { second };
        let mut px = back.clone();
        // Head movement: up to 2 pixels each way; face size breathing by up to 2 pixels.
        let (dx, dy) = (rng.below(5), rng.below(5));
        let side = FACE_SIDE - 2 + rng.below(5);
        paste_image(&mut px, w, face, x0 + dx - 2, y0 + dy - 2, side);
        // Exposure: a gain of 0.96-1.04 for the whole frame; sensor noise: the sum of three
        // uniform draws (about ±6 levels, roughly Gaussian with σ ≈ 3.5).
        let gain = 0.96 + 0.08 * rng.unit();
        for p in &mut px {
            let noise = (rng.below(5) + rng.below(5) + rng.below(5)) as f64 - 6.0;
            *p = (f64::from(*p) * gain + noise).round().clamp(0.0, 255.0) as u8;
        }
        frames.push(px);
    }
    Sequence {
        width: w,
        height: h,
        frames,
        change_at: each,
    }
}
