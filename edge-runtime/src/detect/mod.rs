//! Face detection: a boosted cascade of multi-block LBP features (OpenCV's LBP frontal-face
//! cascade, converted by `host-trainer cascade`), integer-only, no heap.
//!
//! For each scale `s` (from `min_size / window` up by `scale_step`), the frame is resampled to
//! `1/s` of its size (bilinear, Q8) straight into an integral image in the caller's `scratch`,
//! and the cascade's window slides over it (step 2 pixels while `s ≤ 2`, then 1, as OpenCV
//! does). Windows passing every stage are hits; overlapping hits are grouped the way OpenCV's
//! `groupRectangles` does (eps 0.2): a group of more than `min_neighbours` hits is a face, its
//! box the hits' average; smaller faces inside a stronger one are dropped.
//!
//! ```no_run
//! # use edge_runtime::detect::*; use edge_runtime::preprocess::GrayFrame;
//! # fn demo(cascade_file: &[u8], frame: &GrayFrame<'_>) -> Result<(), CascadeError> {
//! let cascade = Cascade::from_bytes(cascade_file)?;
//! // Faces from 48 px in a QVGA frame: the largest level is 160x120.
//! let params = DetectParams { min_size: 48, ..DetectParams::default() };
//! let mut scratch = [0u32; 161 * 121]; // ≥ scratch_len(&cascade, 320, 240, &params)
//! let (mut hits, mut faces) = ([Face::EMPTY; 256], [Face::EMPTY; 16]);
//! let stats = detect(&cascade, frame, &params, &mut scratch, &mut hits, &mut faces);
//! for f in &faces[..stats.faces] { /* f.x, f.y, f.w, f.h, largest first */ }
//! # Ok(()) }
//! ```

pub mod cascade;
mod group;

pub use cascade::{Cascade, CascadeError, Feature};

use crate::preprocess::GrayFrame;

/// A face (or a raw hit): box in frame pixels and the number of hits grouped into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Face {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Hits grouped into this face (1 for a raw hit).
    pub neighbours: u32,
}

impl Face {
    /// A zeroed face, to fill buffers.
    pub const EMPTY: Face = Face {
        x: 0,
        y: 0,
        w: 0,
        h: 0,
        neighbours: 0,
    };

    /// Intersection over union with another box, in 1/1000.
    pub fn iou_milli(&self, o: &Face) -> u32 {
        let ix = (self.x + self.w)
            .min(o.x + o.w)
            .saturating_sub(self.x.max(o.x));
        let iy = (self.y + self.h)
            .min(o.y + o.h)
            .saturating_sub(self.y.max(o.y));
        let inter = u64::from(ix) * u64::from(iy);
        let union = u64::from(self.w) * u64::from(self.h) + u64::from(o.w) * u64::from(o.h) - inter;
        if union == 0 {
            return 0;
        }
        (inter * 1000 / union) as u32
    }
}

/// Search settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DetectParams {
    /// Smallest face side searched, in frame pixels (at least the cascade window).
    pub min_size: u32,
    /// Largest face side searched (0: the frame's shorter side).
    pub max_size: u32,
    /// Scale step between pyramid levels in 1/256 (282 ≈ 1.10, OpenCV's usual 1.1).
    pub scale_step: u32,
    /// A face needs more than this many grouped hits (OpenCV's `minNeighbors`, usually 3).
    pub min_neighbours: u32,
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams {
            min_size: 24,
            max_size: 0,
            scale_step: 282,
            min_neighbours: 3,
        }
    }
}

/// What a detection pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DetectStats {
    /// Faces written to the output, largest first.
    pub faces: usize,
    /// Raw hits before grouping.
    pub hits: usize,
    /// Hits that did not fit the hit buffer, and faces that did not fit the output.
    pub dropped: usize,
    /// Windows evaluated.
    pub windows: u64,
    /// Pyramid levels searched (levels whose integral image does not fit `scratch` are skipped
    /// and counted in `skipped_levels`).
    pub levels: u32,
    pub skipped_levels: u32,
}

/// `u32`s of scratch needed to search a `width × height` frame from `params.min_size` up: the
/// integral image of the largest pyramid level.
pub fn scratch_len(
    cascade: &Cascade<'_>,
    width: usize,
    height: usize,
    params: &DetectParams,
) -> usize {
    let s = first_scale(cascade, params);
    let (lw, lh) = level_size(width, height, s);
    (lw + 1) * (lh + 1)
}

fn first_scale(cascade: &Cascade<'_>, params: &DetectParams) -> u32 {
    let win = u32::from(cascade.window_w.max(cascade.window_h));
    (params.min_size.max(win) * 256).div_ceil(win).max(256)
}

fn level_size(width: usize, height: usize, s: u32) -> (usize, usize) {
    (width * 256 / s as usize, height * 256 / s as usize)
}

/// Resamples `frame` by `256 / s` (bilinear, Q8 positions) into the integral image `ii` of a
/// `lw × lh` level: `ii[(y + 1) · (lw + 1) + x + 1]` = sum of the level's pixels above-left.
fn integral_level(frame: &GrayFrame<'_>, s: u32, lw: usize, lh: usize, ii: &mut [u32]) {
    let stride = lw + 1;
    ii[..stride].fill(0);
    let src_pos = |d: usize, limit: usize| -> (usize, u32) {
        // Centre of level pixel d in source pixels, Q8: (d + 0.5) · s − 0.5 source pixel.
        let p = ((2 * d + 1) * s as usize / 2).saturating_sub(128);
        let p = p.min((limit - 1) * 256);
        (p >> 8, (p & 0xff) as u32)
    };
    for y in 0..lh {
        let (y0, fy) = src_pos(y, frame.height);
        let y1 = (y0 + 1).min(frame.height - 1);
        let (r0, r1) = (
            &frame.pixels[y0 * frame.stride..],
            &frame.pixels[y1 * frame.stride..],
        );
        let mut row_sum = 0u32;
        ii[(y + 1) * stride] = 0;
        for x in 0..lw {
            let (x0, fx) = src_pos(x, frame.width);
            let x1 = (x0 + 1).min(frame.width - 1);
            let top = u32::from(r0[x0]) * (256 - fx) + u32::from(r0[x1]) * fx;
            let bottom = u32::from(r1[x0]) * (256 - fx) + u32::from(r1[x1]) * fx;
            let v = (top * (256 - fy) + bottom * fy + (1 << 15)) >> 16;
            row_sum += v;
            ii[(y + 1) * stride + x + 1] = ii[y * stride + x + 1] + row_sum;
        }
    }
}

/// The 8-bit multi-block LBP code of `f` for the window at `(wx, wy)`: each of the 8 outer
/// cells, clockwise from the top-left (bit 7) to the middle-left (bit 0), is compared with the
/// centre cell (≥ sets the bit), as OpenCV's LBP evaluator does.
#[inline]
fn lbp_code(ii: &[u32], stride: usize, wx: usize, wy: usize, f: Feature) -> u8 {
    let (x, y) = (wx + usize::from(f.x), wy + usize::from(f.y));
    let (w, h) = (usize::from(f.w), usize::from(f.h));
    let mut p = [0u32; 16];
    for r in 0..4 {
        let row = (y + r * h) * stride + x;
        for c in 0..4 {
            p[r * 4 + c] = ii[row + c * w];
        }
    }
    let cell = |r: usize, c: usize| -> u32 {
        let i = r * 4 + c;
        p[i].wrapping_sub(p[i + 1])
            .wrapping_sub(p[i + 4])
            .wrapping_add(p[i + 5])
    };
    let centre = cell(1, 1);
    let bit = |r: usize, c: usize, b: u8| -> u8 {
        if cell(r, c) >= centre {
            1 << b
        } else {
            0
        }
    };
    bit(0, 0, 7)
        | bit(0, 1, 6)
        | bit(0, 2, 5)
        | bit(1, 2, 4)
        | bit(2, 2, 3)
        | bit(2, 1, 2)
        | bit(2, 0, 1)
        | bit(1, 0, 0)
}

/// Whether the window at `(wx, wy)` passes every stage.
fn passes(c: &Cascade<'_>, ii: &[u32], stride: usize, wx: usize, wy: usize) -> bool {
    let mut k = 0;
    for s in 0..c.stage_count() {
        let (count, threshold) = c.stage(s);
        let mut sum: i32 = 0;
        for _ in 0..count {
            let code = lbp_code(ii, stride, wx, wy, c.feature(c.weak_feature(k)));
            sum = sum.saturating_add(c.weak_leaf(k, code));
            k += 1;
        }
        if sum < threshold {
            return false;
        }
    }
    true
}

/// Finds the faces in `frame`. Hits go to `hits` (its length caps the hits kept), faces to
/// `faces`, largest first. Frames of any size are accepted: one smaller than the window, or a
/// `scratch` too small for a level, simply yields fewer (or no) faces.
pub fn detect(
    cascade: &Cascade<'_>,
    frame: &GrayFrame<'_>,
    params: &DetectParams,
    scratch: &mut [u32],
    hits: &mut [Face],
    faces: &mut [Face],
) -> DetectStats {
    let mut stats = DetectStats::default();
    let (ww, wh) = (usize::from(cascade.window_w), usize::from(cascade.window_h));
    if frame.width == 0 || frame.height == 0 {
        return stats;
    }
    let max_side = if params.max_size == 0 {
        frame.width.min(frame.height) as u64
    } else {
        u64::from(params.max_size)
    };
    let mut n_hits = 0usize;
    let mut s = first_scale(cascade, params);
    let step_q8 = params.scale_step.max(257);
    loop {
        let (lw, lh) = level_size(frame.width, frame.height, s);
        let face_side = ww.max(wh) as u64 * u64::from(s) / 256;
        if lw < ww || lh < wh || face_side > max_side {
            break;
        }
        let need = (lw + 1) * (lh + 1);
        if need > scratch.len() {
            stats.skipped_levels += 1;
        } else {
            stats.levels += 1;
            let ii = &mut scratch[..need];
            integral_level(frame, s, lw, lh, ii);
            let step = if s <= 512 { 2 } else { 1 };
            let stride = lw + 1;
            for wy in (0..=lh - wh).step_by(step) {
                for wx in (0..=lw - ww).step_by(step) {
                    stats.windows += 1;
                    if passes(cascade, ii, stride, wx, wy) {
                        stats.hits += 1;
                        if n_hits < hits.len() {
                            let scale = |v: usize| (v as u64 * u64::from(s) / 256) as u32;
                            hits[n_hits] = Face {
                                x: scale(wx),
                                y: scale(wy),
                                w: scale(ww),
                                h: scale(wh),
                                neighbours: 1,
                            };
                            n_hits += 1;
                        } else {
                            stats.dropped += 1;
                        }
                    }
                }
            }
        }
        let next = (u64::from(s) * u64::from(step_q8) / 256) as u32;
        s = if next > s { next } else { s + 1 };
    }
    let (kept, lost) = group::group(&mut hits[..n_hits], params.min_neighbours, faces);
    stats.faces = kept;
    stats.dropped += lost;
    stats
}

#[cfg(test)]
mod tests;
