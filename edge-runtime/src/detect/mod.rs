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
pub mod cnn;
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

impl DetectParams {
    /// Faces from 24 pixels (the cascade's window) up to the frame's shorter side, OpenCV's 1.1
    /// scale step and 3 neighbours.
    pub const DEFAULT: DetectParams = DetectParams {
        min_size: 24,
        max_size: 0,
        scale_step: 282,
        min_neighbours: 3,
    };
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams::DEFAULT
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

/// Level widths whose source columns are worked out once per level (on the stack); wider
/// levels work them out per pixel.
const COLUMN_TABLE: usize = 1024;

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
    // Each level column's two source columns and weight, the same for every row.
    let mut columns = [(0u16, 0u16, 0u16); COLUMN_TABLE];
    let table = lw <= COLUMN_TABLE && frame.width <= usize::from(u16::MAX);
    if table {
        for (x, col) in columns.iter_mut().take(lw).enumerate() {
            let (x0, fx) = src_pos(x, frame.width);
            let x1 = (x0 + 1).min(frame.width - 1);
            *col = (x0 as u16, x1 as u16, fx as u16);
        }
    }
    for y in 0..lh {
        let (y0, fy) = src_pos(y, frame.height);
        let y1 = (y0 + 1).min(frame.height - 1);
        let (r0, r1) = (
            &frame.pixels[y0 * frame.stride..],
            &frame.pixels[y1 * frame.stride..],
        );
        let (above, row) = ii[y * stride..(y + 2) * stride].split_at_mut(stride);
        row[0] = 0;
        let pixel = |x0: usize, x1: usize, fx: u32| -> u32 {
            let top = u32::from(r0[x0]) * (256 - fx) + u32::from(r0[x1]) * fx;
            let bottom = u32::from(r1[x0]) * (256 - fx) + u32::from(r1[x1]) * fx;
            (top * (256 - fy) + bottom * fy + (1 << 15)) >> 16
        };
        let mut row_sum = 0u32;
        if table {
            let cells = row[1..].iter_mut().zip(&above[1..]);
            for ((out, up), &(x0, x1, fx)) in cells.zip(&columns[..lw]) {
                row_sum += pixel(usize::from(x0), usize::from(x1), u32::from(fx));
                *out = up + row_sum;
            }
        } else {
            for x in 0..lw {
                let (x0, fx) = src_pos(x, frame.width);
                row_sum += pixel(x0, (x0 + 1).min(frame.width - 1), fx);
                row[x + 1] = above[x + 1] + row_sum;
            }
        }
    }
}

/// Where a feature's 16 integral-image corners are, relative to a window's origin at one
/// pyramid level: the four corner rows' first offsets and the cell width.
#[derive(Clone, Copy)]
struct Corners {
    rows: [usize; 4],
    /// The cell width (a byte, so the compiler knows `3·w + 1` cannot overflow).
    w: u8,
}

impl Corners {
    /// Feature `f` (`[x, y, cell width, cell height]`) in an integral image with rows `stride`
    /// apart.
    fn of(f: &[u8; 4], stride: usize) -> Self {
        let (x, y, h) = (usize::from(f[0]), usize::from(f[1]), usize::from(f[3]));
        Corners {
            rows: core::array::from_fn(|r| (y + r * h) * stride + x),
            w: f[2],
        }
    }
}

/// Features whose corners are worked out once per pyramid level (on the stack); a cascade with
/// more works them out per window.
const CORNER_TABLE: usize = 256;

/// The 8-bit multi-block LBP code of a feature (its corners `k`) for the window whose integral
/// image starts at `win[0]`: each of the 8 outer cells, clockwise from the top-left (bit 7) to
/// the middle-left (bit 0), is compared with the centre cell (≥ sets the bit), as OpenCV's LBP
/// evaluator does. The 16 corners are read as four rows of four (one bounds check a row).
#[inline]
fn lbp_code(win: &[u32], k: &Corners) -> u8 {
    let w = usize::from(k.w);
    // Row r's three differences of neighbouring corners; a cell is the difference of two rows'.
    let diffs = |r: usize| -> [u32; 3] {
        let row = &win[k.rows[r]..][..3 * w + 1];
        let (a, b, c, d) = (row[0], row[w], row[2 * w], row[3 * w]);
        [a.wrapping_sub(b), b.wrapping_sub(c), c.wrapping_sub(d)]
    };
    let cells = |upper: [u32; 3], lower: [u32; 3]| -> [u32; 3] {
        core::array::from_fn(|c| upper[c].wrapping_sub(lower[c]))
    };
    let (d0, d1) = (diffs(0), diffs(1));
    let top = cells(d0, d1);
    let d2 = diffs(2);
    let middle = cells(d1, d2);
    let bottom = cells(d2, diffs(3));
    let centre = middle[1];
    let bit = |cell: u32, b: u8| -> u8 { u8::from(cell >= centre) << b };
    bit(top[0], 7)
        | bit(top[1], 6)
        | bit(top[2], 5)
        | bit(middle[2], 4)
        | bit(bottom[2], 3)
        | bit(bottom[1], 2)
        | bit(bottom[0], 1)
        | bit(middle[0], 0)
}

/// Weak classifiers whose stage bounds are worked out once per search (on the stack); a
/// cascade with more evaluates every weak classifier of a stage.
const BOUND_TABLE: usize = 512;

/// What the weak classifiers after one can still add to its stage's sum: at most `max`, at
/// least `min`.
#[derive(Clone, Copy, Default)]
struct Rest {
    max: i32,
    min: i32,
}

/// Each weak classifier's [`Rest`], in file order, into `out`; false (nothing usable) when the
/// cascade has more than [`BOUND_TABLE`] of them or a stage's leaves could overflow an i32 sum
/// (then the stages are summed with saturation, one weak classifier after the other).
fn stage_bounds(c: &Cascade<'_>, out: &mut [Rest; BOUND_TABLE]) -> bool {
    let weak = c.weak_records();
    if weak.len() > BOUND_TABLE {
        return false;
    }
    let mut k = 0;
    for stage in c.stage_records() {
        let (count, _) = cascade::stage_of(stage);
        let ws = &weak[k..k + count];
        let largest: i64 = ws
            .iter()
            .map(|w| {
                let (a, b) = cascade::leaves_of(w);
                i64::from(a).abs().max(i64::from(b).abs())
            })
            .sum();
        if largest >= i64::from(i32::MAX) {
            return false;
        }
        let (mut max, mut min) = (0i32, 0i32);
        for (j, w) in ws.iter().enumerate().rev() {
            out[k + j] = Rest { max, min };
            let (a, b) = cascade::leaves_of(w);
            (max, min) = (max + a.max(b), min + a.min(b));
        }
        k += count;
    }
    true
}

/// Whether the window at `(wx, wy)` passes every stage: the stages and their weak classifiers
/// are walked in file order as fixed-size records (validated at load).
///
/// With `search.bounds` (and every feature's corners in `search.corners`) a stage stops as soon
/// as its outcome is decided — the sum so far plus the most the rest can add is below the
/// threshold (rejected), or plus the least is at or above it (passed) — which is exactly the
/// outcome of the whole sum. Otherwise every weak classifier is summed, with saturation.
#[inline]
fn passes(c: &Cascade<'_>, search: &Search<'_>, wx: usize, wy: usize) -> bool {
    let win = &search.ii[wy * search.stride + wx..];
    let weak = c.weak_records();
    let mut k = 0;
    match search.bounds {
        Some(bounds) if search.corners.len() == c.feature_records().len() => {
            'stages: for stage in c.stage_records() {
                let (count, threshold) = cascade::stage_of(stage);
                let (ws, rests) = (&weak[k..k + count], &bounds[k..k + count]);
                k += count;
                let mut sum: i32 = 0;
                for (w, rest) in ws.iter().zip(rests) {
                    let corners = &search.corners[cascade::weak_feature_of(w)];
                    sum += cascade::weak_leaf_of(w, lbp_code(win, corners));
                    if sum + rest.max < threshold {
                        return false;
                    }
                    if sum + rest.min >= threshold {
                        continue 'stages;
                    }
                }
                return false;
            }
        }
        _ => {
            let features = c.feature_records();
            for stage in c.stage_records() {
                let (count, threshold) = cascade::stage_of(stage);
                let mut sum: i32 = 0;
                for w in &weak[k..k + count] {
                    let f = cascade::weak_feature_of(w);
                    let code = match search.corners.get(f) {
                        Some(corners) => lbp_code(win, corners),
                        None => lbp_code(win, &Corners::of(&features[f], search.stride)),
                    };
                    sum = sum.saturating_add(cascade::weak_leaf_of(w, code));
                }
                k += count;
                if sum < threshold {
                    return false;
                }
            }
        }
    }
    true
}

/// One pyramid level's search state: its integral image and what is worked out once for it.
struct Search<'a> {
    ii: &'a [u32],
    stride: usize,
    /// The corners of the first [`CORNER_TABLE`] features at this level.
    corners: &'a [Corners],
    /// Each weak classifier's [`Rest`], when usable (see [`stage_bounds`]).
    bounds: Option<&'a [Rest]>,
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
    let mut rest = [Rest::default(); BOUND_TABLE];
    let bounds = stage_bounds(cascade, &mut rest).then_some(&rest[..cascade.weak_records().len()]);
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
            let features = cascade.feature_records();
            let mut corners = [Corners { rows: [0; 4], w: 0 }; CORNER_TABLE];
            let n = features.len().min(CORNER_TABLE);
            for (k, f) in corners.iter_mut().zip(features) {
                *k = Corners::of(f, stride);
            }
            let search = Search {
                ii,
                stride,
                corners: &corners[..n],
                bounds,
            };
            for wy in (0..=lh - wh).step_by(step) {
                for wx in (0..=lw - ww).step_by(step) {
                    stats.windows += 1;
                    if passes(cascade, &search, wx, wy) {
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
