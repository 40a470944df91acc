//! From the detector's head maps to faces, in integers: per cell the score `sigmoid(class) ·
//! sigmoid(objectness)` from the file's Q16 tables, the box (centre offset and the exp of its log
//! size, also a table) and five landmarks, in frame pixels; then non-maximum suppression.

use super::file::{CnnDetector, HeadKind};
use super::run::Plan;
use crate::kernels::i32_at;

/// Q16: 1.0.
pub const ONE: u32 = 1 << 16;

/// A face the CNN detector found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Detection {
    /// Box in frame pixels (it may reach past the frame's edges).
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
    /// `sigmoid(class) · sigmoid(objectness)` in Q16.
    pub score: u32,
    /// Right eye, left eye, nose tip, right and left mouth corners (the subject's right and
    /// left), `(x, y)` in frame pixels.
    pub landmarks: [[i32; 2]; 5],
}

impl Detection {
    /// No detection (to fill buffers).
    pub const EMPTY: Detection = Detection {
        x: 0,
        y: 0,
        w: 0,
        h: 0,
        score: 0,
        landmarks: [[0; 2]; 5],
    };

    fn area(&self) -> i64 {
        i64::from(self.w.max(0)) * i64::from(self.h.max(0))
    }

    /// Whether the boxes overlap by more than `percent` of their union (intersection over
    /// union).
    pub fn overlaps(&self, o: &Detection, percent: u32) -> bool {
        let iw = (self.x + self.w).min(o.x + o.w) - self.x.max(o.x);
        let ih = (self.y + self.h).min(o.y + o.h) - self.y.max(o.y);
        if iw <= 0 || ih <= 0 {
            return false;
        }
        let inter = i64::from(iw) * i64::from(ih);
        let union = self.area() + o.area() - inter;
        100 * inter > i64::from(percent) * union
    }
}

/// Decoding settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecodeParams {
    /// Cells scoring below this (Q16) are not faces.
    pub min_score: u32,
    /// A face overlapping a higher-scoring one by more than this percent (IoU) is dropped.
    pub nms_percent: u32,
}

impl Default for DecodeParams {
    /// A score of 0.5 and OpenCV's IoU of 0.3. OpenCV's score default (0.9 on
    /// `√(class · objectness)`, 0.81 on the product used here) finds 55% of the faces of the
    /// composite validation frames at 320x256 and 25% at 160x128; 0.5 finds 87.3% and 70.7% at
    /// about the same precision (95.3% and 93.8%); lower scores add little (fer-checks
    /// `face_detect` with `CNN_SWEEP=1`, docs/face-detection.md).
    fn default() -> Self {
        DecodeParams {
            min_score: ONE / 2,
            nms_percent: 30,
        }
    }
}

fn table_u16(t: &[u8], q: i8) -> u32 {
    let i = 2 * (i32::from(q) + 128) as usize;
    u32::from(u16::from_le_bytes([t[i], t[i + 1]]))
}

fn table_u32(t: &[u8], q: i8) -> i64 {
    let i = 4 * (i32::from(q) + 128) as usize;
    i64::from(u32::from_le_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]))
}

/// Q16 pixels to whole pixels, rounded half up.
fn pixels(q16: i64) -> i32 {
    ((q16 + (1 << 15)) >> 16).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Decodes the head maps the detector left in `arena` (after [`CnnDetector::run`] with `plan`)
/// into `out`: the faces scoring at least `p.min_score`, highest first, without those that
/// overlap a higher-scoring face by more than `p.nms_percent`. When more faces pass the score
/// than `out` holds, the highest-scoring ones are kept. Returns how many were written.
pub fn decode(
    det: &CnnDetector<'_>,
    plan: &Plan,
    arena: &[i8],
    p: &DecodeParams,
    out: &mut [Detection],
) -> usize {
    let mut n = 0;
    for g in 0..det.head_count() / 4 {
        let (cls, obj, bx, kps) = (
            det.head(4 * g),
            det.head(4 * g + 1),
            det.head(4 * g + 2),
            det.head(4 * g + 3),
        );
        debug_assert!(
            cls.kind == HeadKind::Class
                && obj.kind == HeadKind::Objectness
                && bx.kind == HeadKind::Box
                && kps.kind == HeadKind::Landmarks
        );
        let stride = cls.stride as i64;
        let s = plan.shape(cls.tensor);
        let (c_map, o_map) = (
            &arena[plan.range(cls.tensor)],
            &arena[plan.range(obj.tensor)],
        );
        let (b_map, k_map) = (
            &arena[plan.range(bx.tensor)],
            &arena[plan.range(kps.tensor)],
        );
        let (bz, kz) = (det.tensor(bx.tensor).zero, det.tensor(kps.tensor).zero);
        let (b_step, k_step) = (
            i64::from(i32_at(bx.table, 0)),
            i64::from(i32_at(kps.table, 0)),
        );
        let exp = &bx.table[4..];
        for cell in 0..s.h * s.w {
            let score =
                (table_u16(cls.table, c_map[cell]) * table_u16(obj.table, o_map[cell])) >> 16;
            if score < p.min_score {
                continue;
            }
            let (row, col) = ((cell / s.w) as i64, (cell % s.w) as i64);
            // Q16 pixels: (cell + offset) · stride.
            let at = |q: i8, zero: i32, step: i64, base: i64| {
                (base * i64::from(ONE) + (i64::from(q) - i64::from(zero)) * step) * stride
            };
            let b = &b_map[4 * cell..4 * cell + 4];
            let (cx, cy) = (at(b[0], bz, b_step, col), at(b[1], bz, b_step, row));
            let (w, h) = (table_u32(exp, b[2]) * stride, table_u32(exp, b[3]) * stride);
            let k = &k_map[10 * cell..10 * cell + 10];
            let landmarks = core::array::from_fn(|i| {
                [
                    pixels(at(k[2 * i], kz, k_step, col)),
                    pixels(at(k[2 * i + 1], kz, k_step, row)),
                ]
            });
            let d = Detection {
                x: pixels(cx - w / 2),
                y: pixels(cy - h / 2),
                w: pixels(w),
                h: pixels(h),
                score,
                landmarks,
            };
            n = keep_best(out, n, d);
        }
    }
    suppress(&mut out[..n], p.nms_percent)
}

/// Adds `d` to the first `n` of `out` (unordered); when full, it replaces the lowest score if
/// it scores higher. Returns the new count.
fn keep_best(out: &mut [Detection], n: usize, d: Detection) -> usize {
    if n < out.len() {
        out[n] = d;
        return n + 1;
    }
    if let Some(low) = (0..n).min_by_key(|&i| out[i].score) {
        if out[low].score < d.score {
            out[low] = d;
        }
    }
    n
}

/// Sorts by score (highest first; ties by position, so the order never depends on the
/// platform) and drops every face overlapping a kept higher one by more than `percent`.
/// Returns how many are kept (at the front).
pub fn suppress(faces: &mut [Detection], percent: u32) -> usize {
    // Insertion sort: a few dozen faces, no heap.
    for i in 1..faces.len() {
        let mut j = i;
        while j > 0 && before(&faces[j], &faces[j - 1]) {
            faces.swap(j, j - 1);
            j -= 1;
        }
    }
    let mut kept = 0;
    for i in 0..faces.len() {
        let d = faces[i];
        if faces[..kept].iter().all(|k| !k.overlaps(&d, percent)) {
            faces[kept] = d;
            kept += 1;
        }
    }
    kept
}

fn before(a: &Detection, b: &Detection) -> bool {
    (a.score, -a.y, -a.x) > (b.score, -b.y, -b.x)
}
