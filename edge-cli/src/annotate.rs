//! `classify --annotate DIR`: for each input image a picture of the same size in DIR, named after
//! the input, with each classified face's square, label and confidence drawn in the expression's
//! colour ([`edge_runtime::Emotion::colour`], the colours of the board's LED).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use anyhow::{Context, Result};
use edge_runtime::Emotion;
use image::{Rgb, RgbImage};

use crate::classify::Classified;

/// Writes annotated pictures into one folder, never over a file that was there before.
pub struct Annotator {
    dir: PathBuf,
    font: FontRef<'static>,
    /// Names written in this run (two inputs with one name get `name-2.png`, ...).
    used: HashSet<String>,
}

impl Annotator {
    /// An annotator writing into `dir` (created if missing).
    ///
    /// # Errors
    /// `dir` exists and is not a folder, or cannot be created.
    pub fn new(dir: &Path) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!("--annotate {}: not a folder", dir.display());
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--annotate {}: cannot create this folder", dir.display()))?;
        let font = FontRef::try_from_slice(dejavu::sans::bold())
            .map_err(|e| anyhow::anyhow!("the embedded font: {e}"))?;
        Ok(Annotator {
            dir: dir.to_path_buf(),
            font,
            used: HashSet::new(),
        })
    }

    /// The picture's path for `input`: its file stem with `.png`, a number added when an earlier
    /// input of this run had the same stem.
    fn target(&mut self, input: &Path) -> PathBuf {
        let stem = input
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        let mut name = format!("{stem}.png");
        let mut n = 1;
        while !self.used.insert(name.clone()) {
            n += 1;
            name = format!("{stem}-{n}.png");
        }
        self.dir.join(name)
    }

    /// Draws `faces` on `img` and writes the picture; returns its path.
    ///
    /// # Errors
    /// The picture's file exists (nothing is overwritten), or it cannot be encoded or written.
    pub fn write(
        &mut self,
        input: &Path,
        img: &image::DynamicImage,
        faces: &[Classified],
    ) -> Result<PathBuf> {
        let path = self.target(input);
        if path.symlink_metadata().is_ok() {
            anyhow::bail!(
                "{}: exists; annotated pictures never replace a file (choose another --annotate \
                 folder)",
                path.display()
            );
        }
        let mut canvas = img.to_rgb8();
        for f in faces {
            let emotion = Emotion::from_folder_name(f.label).unwrap_or(Emotion::Neutral);
            self.draw_face(&mut canvas, f, colour(emotion));
        }
        let mut png = Vec::new();
        canvas
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .with_context(|| format!("cannot encode {}", path.display()))?;
        fer_dataset::output::write_atomic(&path, &png)?;
        Ok(path)
    }

    /// The face's square (lines a 200th of the picture's larger side, at least 2 pixels) and,
    /// above it (inside it when there is no room), its label on a band of the same colour.
    fn draw_face(&self, canvas: &mut RgbImage, f: &Classified, c: Rgb<u8>) {
        let (w, h) = canvas.dimensions();
        let thick = (w.max(h) / 200).max(2);
        let b = f.face;
        for t in 0..thick {
            rectangle(
                canvas,
                b.x + t,
                b.y + t,
                b.w.saturating_sub(2 * t),
                b.h.saturating_sub(2 * t),
                c,
            );
        }
        let text = format!("{} {:.0}%", f.label, 100.0 * f.confidence);
        let size = (b.w as f32 / 6.0).clamp(12.0, 48.0);
        let scaled = self.font.as_scaled(PxScale::from(size));
        let text_w: f32 = text
            .chars()
            .map(|ch| scaled.h_advance(self.font.glyph_id(ch)))
            .sum();
        let band_h = (scaled.ascent() - scaled.descent()).ceil() as u32 + 4;
        let band_w = (text_w.ceil() as u32 + 6).min(w.saturating_sub(b.x));
        let band_y = if b.y >= band_h { b.y - band_h } else { b.y };
        for y in band_y..(band_y + band_h).min(h) {
            for x in b.x..(b.x + band_w).min(w) {
                canvas.put_pixel(x, y, c);
            }
        }
        let ink = if u32::from(c[0]) + u32::from(c[1]) + u32::from(c[2]) > 300 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        };
        let mut x = b.x as f32 + 3.0;
        let baseline = band_y as f32 + 2.0 + scaled.ascent();
        for ch in text.chars() {
            let id = self.font.glyph_id(ch);
            let glyph = id.with_scale_and_position(size, ab_glyph::point(x, baseline));
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                outline.draw(|gx, gy, cover| {
                    let px = bounds.min.x as i64 + i64::from(gx);
                    let py = bounds.min.y as i64 + i64::from(gy);
                    if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                        let under = *canvas.get_pixel(px as u32, py as u32);
                        canvas.put_pixel(px as u32, py as u32, blend(under, ink, cover));
                    }
                });
            }
            x += scaled.h_advance(id);
        }
    }
}

/// An expression's colour as 8-bit RGB: the LED's channels, on bright and off dark.
pub fn colour(e: Emotion) -> Rgb<u8> {
    let (r, g, b) = e.colour();
    let v = |on: bool| if on { 235 } else { 30 };
    Rgb([v(r), v(g), v(b)])
}

/// `over` laid on `under` with coverage `a` (0 to 1).
fn blend(under: Rgb<u8>, over: Rgb<u8>, a: f32) -> Rgb<u8> {
    let a = a.clamp(0.0, 1.0);
    let mix = |u: u8, o: u8| (f32::from(u) * (1.0 - a) + f32::from(o) * a).round() as u8;
    Rgb([
        mix(under[0], over[0]),
        mix(under[1], over[1]),
        mix(under[2], over[2]),
    ])
}

/// The one-pixel outline of the rectangle at (`x`, `y`) of `w` x `h`, clipped to the canvas.
fn rectangle(canvas: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, c: Rgb<u8>) {
    if w == 0 || h == 0 {
        return;
    }
    let (cw, ch) = canvas.dimensions();
    let (x1, y1) = (x + w - 1, y + h - 1);
    for px in x..=x1.min(cw.saturating_sub(1)) {
        for py in [y, y1] {
            if py < ch {
                canvas.put_pixel(px, py, c);
            }
        }
    }
    for py in y..=y1.min(ch.saturating_sub(1)) {
        for px in [x, x1] {
            if px < cw {
                canvas.put_pixel(px, py, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rectangle_outline_is_drawn_and_clipped() {
        let mut c = RgbImage::new(10, 8);
        let red = Rgb([255, 0, 0]);
        rectangle(&mut c, 2, 1, 4, 3, red);
        assert_eq!(*c.get_pixel(2, 1), red);
        assert_eq!(*c.get_pixel(5, 3), red);
        assert_eq!(*c.get_pixel(3, 2), Rgb([0, 0, 0]), "inside stays");
        rectangle(&mut c, 8, 6, 10, 10, red); // past the edges: clipped, no panic
        assert_eq!(*c.get_pixel(9, 6), red);
    }

    #[test]
    fn colours_follow_the_led() {
        assert_eq!(colour(Emotion::Angry), Rgb([235, 30, 30]));
        assert_eq!(colour(Emotion::Neutral), Rgb([235, 235, 235]));
        assert_eq!(
            blend(Rgb([0, 0, 0]), Rgb([200, 100, 50]), 0.5),
            Rgb([100, 50, 25])
        );
    }
}
