//! Steady labels over time: the faces of consecutive frames are followed by the overlap of their
//! squares, and each followed face's logits are averaged across frames (an exponential average)
//! with hysteresis on its label, so that a still face keeps one label instead of flickering
//! between classes from frame to frame, and a real change of expression is followed within a
//! few frames. Integer-only, no heap: the caller owns the [`Tracker`] and its capacity.
//!
//! ```
//! # use edge_runtime::steady::{Steady, Tracker, Followed};
//! # use edge_runtime::preprocess::Square;
//! let steady = Steady::DEFAULT;
//! let margin = steady.margin_units(0.1); // the model's output scale
//! let mut tracker: Tracker<4> = Tracker::new();
//! let face = Square { x: 10, y: 10, side: 80 };
//! let mut out = [Followed::EMPTY; 2];
//! let n = tracker.update(&steady, margin, &[(face, [0, 0, 0, 40, 0, 0, 0])], &mut out);
//! assert_eq!((n, out[0].label.name()), (1, "happy"));
//! ```

use crate::infer::first_largest;
use crate::labels::{Emotion, CLASS_COUNT};
use crate::preprocess::Square;

/// How labels are kept steady: the average's weight, the hysteresis and the tracking rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Steady {
    /// Weight of a new frame's logits in a face's running average, in 1/256 (256: the frame's
    /// own logits, no smoothing).
    pub new_weight: u16,
    /// A followed face's label changes only when another class's averaged logit leads the
    /// label's by more than this, in thousandths of a logit (natural-log units; 0: no
    /// hysteresis, the average's largest class).
    pub switch_millis: u16,
    /// A face of the new frame continues a followed face when their squares overlap by at least
    /// this share of their union, in percent.
    pub min_overlap_percent: u8,
    /// A followed face missing from more frames than this in a row is forgotten.
    pub max_missed: u8,
}

impl Steady {
    /// The published setting: half weight for each new frame and a switch margin of 0.8 logit,
    /// chosen on the recorded sequences of docs/steady-labels.md (fer-checks test
    /// `steady_labels`): 9.6x fewer label flips than per-frame labels, a real change followed
    /// after 4.3 frames on average.
    pub const DEFAULT: Steady = Steady {
        new_weight: 128,
        switch_millis: 800,
        min_overlap_percent: 30,
        max_missed: 5,
    };

    /// Every frame labelled on its own (faces are still followed, for their numbers).
    pub const OFF: Steady = Steady {
        new_weight: 256,
        switch_millis: 0,
        min_overlap_percent: 30,
        max_missed: 5,
    };

    /// The switch margin in the units of the logits given to [`Tracker::update`], for logits
    /// that dequantize as `scale · q` (a model's output scale; half of it for mirrored sums).
    /// Computed once per model.
    pub fn margin_units(&self, scale: f32) -> i32 {
        if !(scale.is_finite() && scale > 0.0) {
            return 0;
        }
        let units = f32::from(self.switch_millis) / 1000.0 / scale;
        // Round half up; the margin is at most 65.535 logits, so the cast cannot overflow.
        (units + 0.5).min(1.0e6) as i32
    }
}

/// One followed face of a frame, in the order of the faces given to [`Tracker::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Followed {
    /// The followed face's number (from 1, never reused while the tracker lives); 0 when the
    /// tracker was full and this face is labelled on its own.
    pub track: u32,
    /// The steady label.
    pub label: Emotion,
    /// This frame's own label (the largest logit of this frame).
    pub raw: Emotion,
    /// Frames this face has been followed for, this one included.
    pub frames: u32,
    /// The face's running average of the logits, ×256 (the frame's own logits ×256 when it is
    /// not followed): its softmax gives the steady label's confidence.
    pub average: [i32; CLASS_COUNT],
}

impl Followed {
    /// A placeholder, to fill buffers.
    pub const EMPTY: Followed = Followed {
        track: 0,
        label: Emotion::Neutral,
        raw: Emotion::Neutral,
        frames: 0,
        average: [0; CLASS_COUNT],
    };
}

#[derive(Clone, Copy, Debug)]
struct Track {
    id: u32,
    square: Square,
    /// Running average of the logits, ×256.
    average: [i32; CLASS_COUNT],
    label: Emotion,
    frames: u32,
    missed: u8,
    seen_now: bool,
}

/// The faces followed across frames, at most `N` at once (no heap).
#[derive(Clone, Debug)]
pub struct Tracker<const N: usize> {
    tracks: [Option<Track>; N],
    next_id: u32,
}

impl<const N: usize> Default for Tracker<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Tracker<N> {
    /// A tracker that follows no face yet.
    pub const fn new() -> Self {
        Tracker {
            tracks: [None; N],
            next_id: 1,
        }
    }

    /// Faces followed now.
    pub fn len(&self) -> usize {
        self.tracks.iter().flatten().count()
    }

    /// Whether no face is followed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one frame's faces (each square with its logits: a model's int8 logits, or mirrored
    /// sums; `margin` from [`Steady::margin_units`] in the same units) and writes each face's
    /// steady label to `out`, in the same order. Faces are matched to followed faces by the
    /// largest overlap first; a face that matches none starts a new one (replacing the one
    /// missing longest when all `N` are in use). Returns how many faces were written (the
    /// shorter of `faces` and `out`).
    pub fn update(
        &mut self,
        steady: &Steady,
        margin: i32,
        faces: &[(Square, [i16; CLASS_COUNT])],
        out: &mut [Followed],
    ) -> usize {
        let n = faces.len().min(out.len());
        let faces = &faces[..n];
        for t in self.tracks.iter_mut().flatten() {
            t.seen_now = false;
        }
        // Which followed face each face continues, by the largest overlap first.
        let mut slot_of = [usize::MAX; 64];
        let matched_faces = n.min(slot_of.len());
        loop {
            let mut best: Option<(u64, u64, usize, usize)> = None;
            for (fi, (square, _)) in faces[..matched_faces].iter().enumerate() {
                if slot_of[fi] != usize::MAX {
                    continue;
                }
                for (ti, t) in self.tracks.iter().enumerate() {
                    let Some(t) = t.filter(|t| !t.seen_now) else {
                        continue;
                    };
                    let (inter, union) = overlap(&t.square, square);
                    let enough = inter * 100 >= union * u64::from(steady.min_overlap_percent);
                    // Compare inter/union without division: a/b > c/d ⇔ a·d > c·b.
                    let better = best.is_none_or(|(bi, bu, _, _)| inter * bu > bi * union);
                    if inter > 0 && enough && better {
                        best = Some((inter, union, fi, ti));
                    }
                }
            }
            let Some((_, _, fi, ti)) = best else { break };
            slot_of[fi] = ti;
            if let Some(t) = self.tracks[ti].as_mut() {
                t.seen_now = true;
            }
        }
        // Faces that continue none start a followed face in a free slot, or in the one missing
        // longest (never one seen in this frame).
        for (fi, (square, logits)) in faces.iter().enumerate() {
            let slot = match slot_of.get(fi) {
                Some(&s) if s != usize::MAX => Some(s),
                // Beyond the first 64 faces of a frame, faces are labelled on their own.
                Some(_) => self.start(*square, logits),
                None => None,
            };
            let raw = first_largest(logits);
            out[fi] = match slot.and_then(|s| self.tracks[s].as_mut()) {
                Some(t) => {
                    if t.frames > 0 {
                        t.follow(steady, margin, *square, logits);
                    }
                    t.frames = t.frames.saturating_add(1);
                    Followed {
                        track: t.id,
                        label: t.label,
                        raw,
                        frames: t.frames,
                        average: t.average,
                    }
                }
                None => Followed {
                    track: 0,
                    label: raw,
                    raw,
                    frames: 1,
                    average: logits.map(|v| i32::from(v) << 8),
                },
            };
        }
        // Followed faces missing from this frame age, and are forgotten after `max_missed`.
        for slot in self.tracks.iter_mut() {
            if let Some(t) = slot {
                if !t.seen_now {
                    t.missed = t.missed.saturating_add(1);
                    if t.missed > steady.max_missed {
                        *slot = None;
                    }
                }
            }
        }
        n
    }

    /// Starts following a face in a free slot or the slot of the face missing longest; `None`
    /// when every followed face was seen in this frame.
    fn start(&mut self, square: Square, logits: &[i16; CLASS_COUNT]) -> Option<usize> {
        let slot = match self.tracks.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                let (slot, _) = self
                    .tracks
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| t.filter(|t| !t.seen_now).map(|t| (i, t.missed)))
                    .max_by_key(|&(i, missed)| (missed, core::cmp::Reverse(i)))?;
                slot
            }
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.tracks[slot] = Some(Track {
            id,
            square,
            average: logits.map(|v| i32::from(v) << 8),
            label: first_largest(logits),
            frames: 0,
            missed: 0,
            seen_now: true,
        });
        Some(slot)
    }
}

impl Track {
    /// One more frame of this face: the average moves towards the frame's logits by the new
    /// frame's weight, and the label changes when another class leads it by more than `margin`.
    fn follow(
        &mut self,
        steady: &Steady,
        margin: i32,
        square: Square,
        logits: &[i16; CLASS_COUNT],
    ) {
        let weight = i32::from(steady.new_weight.clamp(1, 256));
        for (avg, &v) in self.average.iter_mut().zip(logits) {
            let target = i32::from(v) << 8;
            // Floor division by 256 (an arithmetic shift): the same on every target.
            *avg += ((target - *avg) * weight) >> 8;
        }
        let best = first_largest(&self.average);
        let lead = self.average[best.index()] - self.average[self.label.index()];
        if best != self.label && lead > margin.max(0).saturating_mul(256) {
            self.label = best;
        }
        self.square = square;
        self.missed = 0;
    }
}

/// Intersection and union of two squares, in pixels.
fn overlap(a: &Square, b: &Square) -> (u64, u64) {
    let span = |a0: usize, a1: usize, b0: usize, b1: usize| a1.min(b1).saturating_sub(a0.max(b0));
    let w = span(a.x, a.x + a.side, b.x, b.x + b.side) as u64;
    let h = span(a.y, a.y + a.side, b.y, b.y + b.side) as u64;
    let inter = w * h;
    let area = |s: &Square| (s.side as u64) * (s.side as u64);
    (inter, area(a) + area(b) - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sq(x: usize, y: usize, side: usize) -> Square {
        Square { x, y, side }
    }

    fn logits_for(class: Emotion, lead: i16) -> [i16; CLASS_COUNT] {
        let mut l = [0i16; CLASS_COUNT];
        l[class.index()] = lead;
        l
    }

    #[test]
    fn a_still_face_keeps_its_label_through_single_frame_flickers() {
        let steady = Steady::DEFAULT;
        let margin = steady.margin_units(0.1); // 8 units
        let mut tracker: Tracker<4> = Tracker::new();
        let mut out = [Followed::EMPTY; 1];
        let mut labels = [Emotion::Neutral; 12];
        for (i, label) in labels.iter_mut().enumerate() {
            // Happy by 10 units, except every third frame sad by 6.
            let l = if i % 3 == 2 {
                logits_for(Emotion::Sad, 6)
            } else {
                logits_for(Emotion::Happy, 10)
            };
            tracker.update(&steady, margin, &[(sq(50, 40, 80), l)], &mut out);
            *label = out[0].label;
            assert_eq!(out[0].track, 1);
            assert_eq!(out[0].frames, i as u32 + 1);
        }
        assert!(labels.iter().all(|&l| l == Emotion::Happy), "{labels:?}");
        // Without smoothing the same frames flicker.
        let mut plain: Tracker<4> = Tracker::new();
        let mut flips = 0;
        let mut last = None;
        for i in 0..12 {
            let l = if i % 3 == 2 {
                logits_for(Emotion::Sad, 6)
            } else {
                logits_for(Emotion::Happy, 10)
            };
            plain.update(&Steady::OFF, 0, &[(sq(50, 40, 80), l)], &mut out);
            if last.is_some_and(|p| p != out[0].label) {
                flips += 1;
            }
            last = Some(out[0].label);
        }
        assert_eq!(flips, 7);
    }

    #[test]
    fn a_real_change_is_followed_after_a_few_frames() {
        let steady = Steady::DEFAULT;
        let margin = steady.margin_units(0.1);
        let mut tracker: Tracker<2> = Tracker::new();
        let mut out = [Followed::EMPTY; 1];
        for _ in 0..10 {
            tracker.update(
                &steady,
                margin,
                &[(sq(0, 0, 60), logits_for(Emotion::Neutral, 20))],
                &mut out,
            );
        }
        assert_eq!(out[0].label, Emotion::Neutral);
        let mut delay = None;
        for i in 0..20 {
            tracker.update(
                &steady,
                margin,
                &[(sq(2, 1, 60), logits_for(Emotion::Surprise, 20))],
                &mut out,
            );
            if out[0].label == Emotion::Surprise {
                delay = Some(i + 1);
                break;
            }
        }
        // Lead after k frames: 20·(1 − 2·0.5^k) units against the margin of 8: k = 2.
        assert_eq!(delay, Some(2));
    }

    #[test]
    fn faces_are_followed_by_overlap_and_forgotten_when_gone() {
        let steady = Steady::DEFAULT;
        let mut tracker: Tracker<2> = Tracker::new();
        let mut out = [Followed::EMPTY; 3];
        let left = (sq(0, 0, 50), logits_for(Emotion::Happy, 9));
        let right = (sq(200, 0, 50), logits_for(Emotion::Angry, 9));
        assert_eq!(tracker.update(&steady, 0, &[left, right], &mut out), 2);
        assert_eq!((out[0].track, out[1].track), (1, 2));
        // Given in the other order, each face keeps its number.
        tracker.update(&steady, 0, &[right, left], &mut out);
        assert_eq!((out[0].track, out[1].track), (2, 1));
        // A third face while both are seen: labelled on its own.
        let third = (sq(100, 100, 50), logits_for(Emotion::Surprise, 9));
        tracker.update(&steady, 0, &[left, right, third], &mut out);
        assert_eq!((out[2].track, out[2].label), (0, Emotion::Surprise));
        // The right face leaves: after max_missed frames its slot is free for the third.
        for _ in 0..=steady.max_missed {
            tracker.update(&steady, 0, &[left], &mut out[..1]);
        }
        assert_eq!(tracker.len(), 1);
        tracker.update(&steady, 0, &[left, third], &mut out);
        assert_eq!((out[0].track, out[1].track), (1, 3));
        // A face that moved too far is a new one.
        tracker.update(
            &steady,
            0,
            &[(sq(30, 0, 50), logits_for(Emotion::Happy, 9))],
            &mut out,
        );
        assert_eq!(out[0].track, 4);
    }

    #[test]
    fn overlap_counts_pixels() {
        assert_eq!(overlap(&sq(0, 0, 10), &sq(5, 5, 10)), (25, 175));
        assert_eq!(overlap(&sq(0, 0, 10), &sq(10, 0, 10)), (0, 200));
        assert_eq!(overlap(&sq(0, 0, 10), &sq(0, 0, 10)), (100, 100));
    }

    #[test]
    fn the_margin_follows_the_model_scale() {
        let s = Steady::DEFAULT;
        assert_eq!(s.margin_units(0.1), 8);
        assert_eq!(s.margin_units(0.03), 27);
        assert_eq!(s.margin_units(f32::NAN), 0);
        assert_eq!(Steady::OFF.margin_units(0.1), 0);
    }
}
