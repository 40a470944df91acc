//! `classify --annotate DIR`: for each input image a picture of the same size in DIR, named after
//! the input, with each classified face's square, label and confidence drawn in the expression's
//! colour ([`edge_runtime::Emotion::colour`], the colours of the board's LED).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use anyhow::{Context, Result};
use edge_runtime::Emotion;
use image::{Rgb, RgbImage};

use crate::classified::Classified;

/// Draws faces' squares and labels on pictures (the embedded DejaVu Sans Bold font).
pub struct Painter {
    font: FontRef<'static>,
}

/// Writes annotated pictures into one folder, never over a file that was there before.
pub struct Annotator {
    dir: PathBuf,
    /// Names written in this run (two inputs with one name get `name-2.png`, ...).
    used: HashSet<String>,
}

impl Painter {
    /// A painter with the embedded font.
    ///
    /// # Errors
    /// The embedded font does not parse (a broken build).
    pub fn new() -> Result<Self> {
        let font = FontRef::try_from_slice(dejavu::sans::bold())
            .map_err(|e| anyhow::anyhow!("the embedded font: {e}"))?;
        Ok(Painter { font })
    }

    /// The font, for captions.
    pub fn font(&self) -> &FontRef<'static> {
        &self.font
    }
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
        Ok(Annotator {
            dir: dir.to_path_buf(),
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

    /// Writes the annotated picture of `input`; returns its path.
    ///
    /// # Errors
    /// The picture's file exists (nothing is overwritten), or it cannot be encoded or written.
    pub fn write(&mut self, input: &Path, canvas: &RgbImage) -> Result<PathBuf> {
        let path = self.target(input);
        if path.symlink_metadata().is_ok() {
            anyhow::bail!(
                "{}: exists; annotated pictures never replace a file (choose another --annotate \
                 folder)",
                path.display()
            );
        }
        write_png(&path, canvas)?;
        Ok(path)
    }
}

impl Painter {
    /// `img` with `faces` drawn on it.
    pub fn draw<'a>(
        &self,
        img: &image::DynamicImage,
        faces: impl IntoIterator<Item = &'a Classified>,
    ) -> RgbImage {
        let mut canvas = img.to_rgb8();
        for f in faces {
            let emotion = Emotion::from_folder_name(f.label).unwrap_or(Emotion::Neutral);
            self.draw_face(&mut canvas, f, colour(emotion));
        }
        canvas
    }

    /// The face's square (lines a 200th of the picture's larger side, at least 2 pixels) and,
    /// above it (inside it when there is no room), its label on a band of the same colour.
    fn draw_face(&self, canvas: &mut RgbImage, f: &Classified, c: Rgb<u8>) {
        let (w, h) = canvas.dimensions();
        let thick = (w.max(h) / 200).max(2);
        let px = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let (bx, by, side) = (px(f.face.x), px(f.face.y), px(f.face.side));
        for t in 0..thick {
            rectangle(
                canvas,
                bx.saturating_add(t),
                by.saturating_add(t),
                side.saturating_sub(2 * t),
                side.saturating_sub(2 * t),
                c,
            );
        }
        let text = format!("{} {:.0}%", f.label, 100.0 * f.confidence);
        let size = (side as f32 / 6.0).clamp(12.0, 48.0);
        let scaled = self.font.as_scaled(PxScale::from(size));
        let text_w: f32 = text
            .chars()
            .map(|ch| scaled.h_advance(self.font.glyph_id(ch)))
            .sum();
        let band_h = (scaled.ascent() - scaled.descent()).ceil() as u32 + 4;
        let band_w = (text_w.ceil() as u32 + 6).min(w.saturating_sub(bx));
        let band_y = if by >= band_h { by - band_h } else { by };
        for y in band_y..(band_y + band_h).min(h) {
            for x in bx..(bx + band_w).min(w) {
                canvas.put_pixel(x, y, c);
            }
        }
        let ink = if u32::from(c[0]) + u32::from(c[1]) + u32::from(c[2]) > 300 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        };
        let at = (bx + 3, band_y + 2);
        write_text(canvas, &self.font, &text, at, size, (w, ink));
    }
}

/// Writes `canvas` as a PNG file, atomically.
///
/// # Errors
/// It cannot be encoded or written.
pub fn write_png(path: &Path, canvas: &RgbImage) -> Result<()> {
    let mut png = Vec::new();
    canvas
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    fer_dataset::atomic_write::write_atomic(path, &png)
}

/// Draws `text` in `ink` on `canvas` from `(x, top)`, `size` pixels high, clipped to the canvas
/// and to the columns left of `right`.
pub fn write_text(
    canvas: &mut RgbImage,
    font: &FontRef<'_>,
    text: &str,
    (x, top): (u32, u32),
    size: f32,
    (right, ink): (u32, Rgb<u8>),
) {
    let scaled = font.as_scaled(PxScale::from(size));
    let (w, h) = canvas.dimensions();
    let right = right.min(w);
    let baseline = top as f32 + scaled.ascent();
    let mut pen = x as f32;
    for ch in text.chars() {
        let id = font.glyph_id(ch);
        let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, baseline));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, cover| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                if px >= 0 && py >= 0 && (px as u32) < right && (py as u32) < h {
                    let under = *canvas.get_pixel(px as u32, py as u32);
                    canvas.put_pixel(px as u32, py as u32, blend(under, ink, cover));
                }
            });
        }
        pen += scaled.h_advance(id);
    }
}

/// `classify --contact-sheet FILE`: every input's annotated picture as a thumbnail on one PNG,
/// in a grid, with the file name under each.
pub struct ContactSheet {
    path: PathBuf,
    thumbs: Vec<(RgbImage, String)>,
    /// Inputs left off the sheet (past [`SHEET_MAX`]).
    left_off: usize,
}

/// Side of a thumbnail's cell, in pixels (the picture fits inside, its shape kept).
pub const SHEET_CELL: u32 = 240;
/// Pictures on one sheet at most (16 x 16 cells, about 45 MB of thumbnails in memory).
pub const SHEET_MAX: usize = 256;
const CAPTION: u32 = 20;

impl ContactSheet {
    /// A sheet to be written to `path`, which must not exist (nothing is overwritten).
    ///
    /// # Errors
    /// `path` exists, or is not a `.png` name.
    pub fn new(path: &Path) -> Result<Self> {
        if path.symlink_metadata().is_ok() {
            anyhow::bail!(
                "--contact-sheet {}: exists; a contact sheet never replaces a file",
                path.display()
            );
        }
        if !path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            anyhow::bail!(
                "--contact-sheet {}: expected a .png file name",
                path.display()
            );
        }
        Ok(ContactSheet {
            path: path.to_path_buf(),
            thumbs: Vec::new(),
            left_off: 0,
        })
    }

    /// Adds one annotated picture, named `name`.
    pub fn add(&mut self, picture: &RgbImage, name: &str) {
        if self.thumbs.len() == SHEET_MAX {
            self.left_off += 1;
            return;
        }
        let (w, h) = picture.dimensions();
        let scale = f64::from(SHEET_CELL) / f64::from(w.max(h).max(1));
        let (tw, th) = (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        );
        let thumb = image::imageops::resize(picture, tw, th, image::imageops::FilterType::Triangle);
        self.thumbs.push((thumb, name.to_string()));
    }

    /// Lays the thumbnails out (up to 8 per row) and writes the sheet; returns how many
    /// pictures it holds and how many were left off.
    ///
    /// # Errors
    /// Nothing to put on it, the file appeared meanwhile, or it cannot be written.
    pub fn finish(self, font: &FontRef<'_>) -> Result<(usize, usize)> {
        let n = self.thumbs.len();
        if n == 0 {
            anyhow::bail!(
                "--contact-sheet {}: no picture to put on it",
                self.path.display()
            );
        }
        let cols = (n as f64).sqrt().ceil().clamp(1.0, 8.0) as u32;
        let rows = (n as u32).div_ceil(cols);
        let (cell_w, cell_h) = (SHEET_CELL + 8, SHEET_CELL + CAPTION + 8);
        let mut sheet = RgbImage::from_pixel(cols * cell_w, rows * cell_h, Rgb([24, 24, 24]));
        for (i, (thumb, name)) in self.thumbs.iter().enumerate() {
            let (cx, cy) = (
                (i as u32 % cols) * cell_w + 4,
                (i as u32 / cols) * cell_h + 4,
            );
            let (tw, th) = thumb.dimensions();
            let (x0, y0) = (cx + (SHEET_CELL - tw) / 2, cy + (SHEET_CELL - th) / 2);
            image::imageops::replace(&mut sheet, thumb, i64::from(x0), i64::from(y0));
            let white = Rgb([255, 255, 255]);
            let at = (cx, cy + SHEET_CELL + 2);
            write_text(&mut sheet, font, name, at, 14.0, (cx + SHEET_CELL, white));
        }
        if self.path.symlink_metadata().is_ok() {
            anyhow::bail!(
                "--contact-sheet {}: appeared while classifying; not replaced",
                self.path.display()
            );
        }
        write_png(&self.path, &sheet)?;
        Ok((n, self.left_off))
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
