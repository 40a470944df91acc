//! Steady labels for the camera: the faces of each frame go through edge-runtime's tracker
//! ([`edge_runtime::steady`]), the same rule the firmware runs, and come out with the number of
//! the face they continue, the steady label and the frame's own label.

use edge_runtime::steady::{Followed, Steady, Tracker};
use edge_runtime::{Emotion, Model, CLASS_COUNT};
use serde::Serialize;

use crate::classified::Classified;

/// Faces followed at once; more faces in a frame are labelled on their own.
pub const MAX_FOLLOWED: usize = 8;

/// One face of a camera frame.
#[derive(Serialize, Debug)]
pub struct FrameFace {
    /// `label` is the steady label, `confidence` its share in the face's running average of the
    /// logits (this frame's own scores are in `top3`).
    #[serde(flatten)]
    pub face: Classified,
    /// The followed face it continues (from 1); 0 when more faces are in view than are followed.
    pub track: u32,
    /// This frame's own label (the largest score of this frame).
    pub raw: &'static str,
    #[serde(skip)]
    pub followed: Followed,
}

/// The tracker and the unit conversion of the model's scores.
pub struct Labeller {
    tracker: Tracker<MAX_FOLLOWED>,
    steady: Steady,
    margin: i32,
    scale: f32,
}

impl Labeller {
    /// Steady labels with `steady` for `model`'s logits (the switch margin in its output units).
    pub fn new(model: &Model<'_>, steady: Steady) -> Self {
        let scale = edge_runtime::pipeline::output_q(model).scale;
        Labeller {
            tracker: Tracker::new(),
            steady,
            margin: steady.margin_units(scale),
            scale,
        }
    }

    /// The faces of the next frame with their steady labels.
    pub fn label(&mut self, faces: Vec<Classified>) -> Vec<FrameFace> {
        let seen: Vec<_> = faces.iter().map(|f| (f.face, self.units(f))).collect();
        let mut followed = vec![Followed::EMPTY; faces.len()];
        let n = self
            .tracker
            .update(&self.steady, self.margin, &seen, &mut followed);
        faces
            .into_iter()
            .zip(&followed[..n])
            .map(|(mut face, f)| {
                face.label = f.label.name();
                face.confidence = self.steady_confidence(f);
                FrameFace {
                    face,
                    track: f.track,
                    raw: f.raw.name(),
                    followed: *f,
                }
            })
            .collect()
    }

    /// The steady label's confidence: its share in the softmax of the face's averaged logits
    /// (the frame's own scores when nothing is averaged, as with `--per-frame`).
    fn steady_confidence(&self, f: &Followed) -> f32 {
        edge_runtime::scores::softmax_average(&f.average, self.scale)[f.label.index()]
    }

    /// A face's evidence in the model's output units: the int8 logits, or (float engine) the
    /// log of its scores divided by the int8 model's output scale, so that the switch margin
    /// means the same logit difference with either engine.
    fn units(&self, face: &Classified) -> [i16; CLASS_COUNT] {
        match face.logits {
            Some(l) => l.map(i16::from),
            None => {
                let mut u = [0i16; CLASS_COUNT];
                for (u, &s) in u.iter_mut().zip(&face.scores) {
                    let v = f64::from(s.max(1e-30)).ln() / f64::from(self.scale);
                    *u = v.round().clamp(-32_000.0, 32_000.0) as i16;
                }
                u
            }
        }
    }
}

/// Label changes of the first followed face over a replay: per frame and steady.
#[derive(Default, Debug)]
pub struct Changes {
    last: Option<(u32, Emotion, Emotion)>,
    pub frames: usize,
    pub raw: usize,
    pub steady: usize,
}

impl Changes {
    /// Counts one frame's largest face (changes only between frames of the same followed face).
    pub fn add(&mut self, faces: &[FrameFace]) {
        let Some(f) = faces.first().map(|f| f.followed) else {
            return;
        };
        self.frames += 1;
        if let Some((track, label, raw)) = self.last {
            if track == f.track && f.track != 0 {
                self.steady += usize::from(label != f.label);
                self.raw += usize::from(raw != f.raw);
            }
        }
        self.last = Some((f.track, f.label, f.raw));
    }
}
