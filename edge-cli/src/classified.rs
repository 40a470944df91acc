//! One face's classification, the record every command prints, draws and follows
//! (`Classified`), and the classification of every face of a gray image with an engine and a
//! detector (`classify_gray`): what `classify`, `camera` and the pictures share.

use anyhow::Result;
use edge_runtime::preprocess::Square;
use edge_runtime::{Emotion, CLASS_COUNT};
use serde::Serialize;

use crate::engine::Engine;
use crate::face_input::face_input;
use crate::faces::{Detector, Source};
use crate::frame::GrayFrameBuf;

/// One classified face.
#[derive(Serialize, Debug)]
pub struct Classified {
    pub file: String,
    /// The face's square in the image, printed as a box `{x, y, w, h}`.
    #[serde(rename = "box", serialize_with = "square_as_box")]
    pub face: Square,
    /// How the face square was chosen: detected, whole crop, or centre square.
    pub source: Source,
    pub label: &'static str,
    pub confidence: f32,
    pub top3: Vec<(&'static str, f32)>,
    /// The int8 logits (int8 engine only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logits: Option<[i8; CLASS_COUNT]>,
    /// Every class's score, in output order.
    #[serde(skip)]
    pub scores: [f32; CLASS_COUNT],
}

/// A square as the box the JSON output has always shown: `{"x", "y", "w", "h"}` in pixels.
fn square_as_box<S: serde::Serializer>(s: &Square, out: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut b = out.serialize_struct("box", 4)?;
    b.serialize_field("x", &s.x)?;
    b.serialize_field("y", &s.y)?;
    b.serialize_field("w", &s.side)?;
    b.serialize_field("h", &s.side)?;
    b.end()
}

/// Classifies every face of a gray image (`file` left empty for the caller to fill).
///
/// # Errors
/// An inference failure.
pub fn classify_gray(
    engine: &mut Engine<'_>,
    detector: &Detector,
    gray: &GrayFrameBuf,
) -> Result<Vec<Classified>> {
    let mut out = Vec::new();
    let squares = detector.squares(gray)?;
    if squares.len() == detector.max_faces() {
        crate::warn!(
            "warning: {} faces found, the most classified per image (--max-faces): there may be \
             more",
            squares.len()
        );
    }
    for (square, source) in squares {
        let input = face_input(gray, square)?;
        let (scores, logits) = engine.scores(&input)?;
        let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        // Highest score first; on ties the lower class index, as the integer argmax does.
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let label = match logits {
            Some(l) => edge_runtime::Logits(l).argmax(),
            None => Emotion::ALL[ranked[0].0],
        };
        out.push(Classified {
            file: String::new(),
            face: square,
            source,
            label: label.name(),
            confidence: scores[label.index()],
            top3: ranked
                .iter()
                .take(3)
                .map(|&(i, s)| (Emotion::ALL[i].name(), s))
                .collect(),
            logits,
            scores,
        });
    }
    Ok(out)
}
