//! The face pipeline, written once for the firmware, `edge-cli` and the checks: a gray frame →
//! the faces in it → a square around each, grown by a margin → 48x48 → light normalization →
//! int8 logits → scores.
//! No heap: the caller owns every buffer ([`Scratch`], the input, the arena).
//!
//! ```no_run
//! # use edge_runtime::pipeline::{self, Scratch, Settings, Source};
//! # use edge_runtime::detect::{Cascade, Face};
//! # use edge_runtime::preprocess::{GrayFrame, Square};
//! # fn demo(model: &edge_runtime::Model<'_>, cascade: &Cascade<'_>, gray: &[u8]) -> Result<(), edge_runtime::Error> {
//! let frame = GrayFrame::new(gray, 320, 240).map_err(edge_runtime::Error::Frame)?;
//! let settings = Settings::DEFAULT;
//! let mut integral = [0u32; 161 * 121];
//! let (mut hits, mut faces) = ([Face::EMPTY; 128], [Face::EMPTY; 4]);
//! let mut scratch = Scratch { integral: &mut integral, hits: &mut hits, faces: &mut faces };
//! let mut squares = [(Square::centre(320, 240), Source::Centre); 4];
//! let found = pipeline::face_squares(&frame, Some(cascade), &settings, &mut scratch, &mut squares);
//! let mut arena = [0i8; 40 * 1024];
//! for &(square, _) in &squares[..found.squares] {
//!     let logits = pipeline::classify(model, &frame, square, &mut arena)?;
//!     let scores = pipeline::scores(model, &logits);
//! }
//! # Ok(()) }
//! ```

use crate::align::{aligned_input, AlignError, AlignRule};
use crate::detect::cnn::decode::{decode, DecodeParams, Detection};
use crate::detect::cnn::file::CnnDetector;
use crate::detect::cnn::input::{input_size, prepare};
use crate::detect::cnn::run::RunError;
use crate::detect::{self, Cascade, DetectParams, DetectStats, Face};
use crate::format::QParams;
use crate::normalize::{Normalize, INPUT_RULE};
use crate::preprocess::{resize_to_input, GrayFrame, Square, SIDE};
use crate::steady::Steady;
use crate::{Error, Logits, Model, CLASS_COUNT, INPUT_PIXELS};

/// How the faces of a frame are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FaceMode {
    /// A frame of at most [`Settings::crop_side`] on both sides is a face crop, taken whole (its
    /// centred square); larger frames: [`FaceMode::Detect`].
    Auto,
    /// The detector's faces only (none when it finds none).
    Detect,
    /// No detector: the centred square of the frame.
    Centre,
}

/// How a face square was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Source {
    /// Around a box the detector found.
    Detected,
    /// The whole (small) frame, a face crop.
    Crop,
    /// The centred square, without a detector.
    Centre,
}

/// Everything that decides which squares of a frame are classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Settings {
    pub mode: FaceMode,
    /// Detector search settings; `min_size` is the smallest face searched on any frame (see
    /// [`Settings::detect_params`] for large frames).
    pub detect: DetectParams,
    /// Margin added around a detected box before the square crop, in percent of its side: 10%
    /// measured best for expression accuracy (0%: 60.3%, 10%: 60.9%, 20%: 59.8% on found faces;
    /// fer-checks `face_detect`).
    pub margin_percent: usize,
    /// The margin around a box of the CNN detector ([`cnn_face_squares`]), whose boxes frame
    /// the face more widely than the cascade's: 0% measured best (expression accuracy end to end
    /// on composite frames of validation faces: 47.7% at 0%, 41.7% at 10%; on the dev set of
    /// real photos 60.4% against 59.1%; docs/face-detection.md).
    pub cnn_margin_percent: usize,
    /// The square's centre moved down by this percent of the detected box's height (negative:
    /// up) before the margin is added: FER-2013's faces are framed from the forehead to the
    /// chin, a detector's box may sit higher or lower. 0 keeps the box's centre.
    pub shift_down_percent: i32,
    /// Frames of at most this side are face crops in [`FaceMode::Auto`]: FER-2013's own images
    /// are 48x48 crops, which the model was trained on as they are (the detector would re-frame
    /// them and change what the model sees).
    pub crop_side: usize,
    /// How labels are kept steady across the frames of a camera ([`crate::steady`]).
    pub steady: Steady,
}

impl Settings {
    /// The defaults of `edge-cli` and of the checks: faces from 24 pixels (from 1/16 of the
    /// shorter side on large photos), OpenCV's 1.1 scale step and 3 neighbours, 10% margin.
    pub const DEFAULT: Settings = Settings {
        mode: FaceMode::Auto,
        detect: DetectParams::DEFAULT,
        margin_percent: 10,
        cnn_margin_percent: 0,
        shift_down_percent: 0,
        crop_side: 96,
        steady: Steady::DEFAULT,
    };

    /// The same settings with another face mode.
    pub const fn with_mode(mut self, mode: FaceMode) -> Settings {
        self.mode = mode;
        self
    }

    /// The same settings searching faces from `pixels` up (a board halves its detector scratch
    /// with 48 on a QVGA frame).
    pub const fn with_min_face(mut self, pixels: u32) -> Settings {
        self.detect.min_size = pixels;
        self
    }

    /// The detector's settings for a `width × height` frame: faces from `detect.min_size`, or
    /// from 1/16 of the shorter side when that is larger (smaller faces on a large photo carry
    /// too little detail to classify).
    pub fn detect_params(&self, width: usize, height: usize) -> DetectParams {
        let sixteenth = u32::try_from(width.min(height) / 16).unwrap_or(u32::MAX);
        DetectParams {
            min_size: self.detect.min_size.max(sixteenth),
            ..self.detect
        }
    }

    /// The square classified for a detected face: centred on its box (moved down by
    /// `shift_down_percent` of its height), the box's side grown by the margin, kept inside the
    /// `width × height` frame ([`Square::around`]).
    pub fn square_of(&self, face: &Face, width: usize, height: usize) -> Option<Square> {
        let shift = i64::from(face.h) * i64::from(self.shift_down_percent) / 100;
        let y = usize::try_from((i64::from(face.y) + shift).max(0)).unwrap_or(0);
        let b = (face.x as usize, y, face.w as usize, face.h as usize);
        Square::around(b, self.margin_percent, width, height)
    }

    /// `u32`s of integral-image scratch that searching a `width × height` frame needs
    /// ([`Scratch::integral`]).
    pub fn integral_len(&self, cascade: &Cascade<'_>, width: usize, height: usize) -> usize {
        detect::scratch_len(cascade, width, height, &self.detect_params(width, height))
    }
}

/// The detector's working memory, owned by the caller.
pub struct Scratch<'a> {
    /// Integral image of the largest pyramid level searched ([`Settings::integral_len`]); a
    /// shorter one skips the levels that do not fit.
    pub integral: &'a mut [u32],
    /// Raw hits before grouping (its length caps the hits kept).
    pub hits: &'a mut [Face],
    /// Grouped faces, largest first (its length caps the faces kept).
    pub faces: &'a mut [Face],
}

/// What [`face_squares`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Found {
    /// Squares written to the output, largest face first.
    pub squares: usize,
    /// The detector's figures, when it ran.
    pub detector: Option<DetectStats>,
}

/// The face squares of `frame` to classify, written to `out` (largest face first; its length
/// caps them). Without a cascade, [`FaceMode::Detect`] finds nothing; an empty frame has no
/// squares.
pub fn face_squares(
    frame: &GrayFrame<'_>,
    cascade: Option<&Cascade<'_>>,
    settings: &Settings,
    scratch: &mut Scratch<'_>,
    out: &mut [(Square, Source)],
) -> Found {
    let (w, h) = (frame.width, frame.height);
    if w == 0 || h == 0 || out.is_empty() {
        return Found::default();
    }
    if let Some(source) = whole_frame(settings, w, h) {
        out[0] = (Square::centre(w, h), source);
        return Found {
            squares: 1,
            detector: None,
        };
    }
    let Some(cascade) = cascade else {
        return Found::default();
    };
    let params = settings.detect_params(w, h);
    let stats = detect::detect(
        cascade,
        frame,
        &params,
        scratch.integral,
        scratch.hits,
        scratch.faces,
    );
    let mut n = 0;
    for f in &scratch.faces[..stats.faces] {
        if n == out.len() {
            break;
        }
        if let Some(square) = settings.square_of(f, w, h) {
            out[n] = (square, Source::Detected);
            n += 1;
        }
    }
    Found {
        squares: n,
        detector: Some(stats),
    }
}

/// Whether a `w × h` frame is classified whole (its centred square) instead of searched for
/// faces: always in [`FaceMode::Centre`], for a small frame (a face crop) in [`FaceMode::Auto`].
fn whole_frame(settings: &Settings, w: usize, h: usize) -> Option<Source> {
    match settings.mode {
        FaceMode::Centre => Some(Source::Centre),
        FaceMode::Auto if w.max(h) <= settings.crop_side => Some(Source::Crop),
        FaceMode::Auto | FaceMode::Detect => None,
    }
}

/// The longest side of the input the CNN detector runs on for a camera frame or photo: its
/// published size (YuNet's 320). Larger frames are shrunk by a whole factor
/// ([`cnn_factor`]).
pub const CNN_MAX_SIDE: usize = 320;

/// The smallest whole factor that shrinks a `w × h` frame to at most `max_side` on its longer
/// side (at least 1).
pub fn cnn_factor(w: usize, h: usize, max_side: usize) -> usize {
    w.max(h).div_ceil(max_side.max(1)).max(1)
}

/// The CNN detector's working memory, owned by the caller (sizes from
/// [`detect::cnn::input::input_size`] and [`detect::cnn::file::CnnDetector::plan`]).
pub struct CnnScratch<'a> {
    /// The shrunk, padded input.
    pub input: &'a mut [u8],
    /// The detector's arena ([`detect::cnn::run::Plan::arena_len`]).
    pub arena: &'a mut [i8],
    /// Faces before the crop rule (its length caps them).
    pub found: &'a mut [Detection],
}

/// [`face_squares`] with the CNN face detector run on `frame` shrunk by `factor`: the faces it
/// finds (score at least 0.5, `DecodeParams::default`) as boxes in the frame, largest first,
/// each squared by the crop rule ([`Settings::square_of`]) with the CNN's own margin
/// ([`Settings::cnn_margin_percent`]). Returns how many squares were
/// written, or why the detector could not run (a frame too large for the scratch).
///
/// # Errors
/// The detector's [`RunError`] (frame size, arena) or a scratch input buffer that is too short.
pub fn cnn_face_squares(
    frame: &GrayFrame<'_>,
    det: &CnnDetector<'_>,
    factor: usize,
    settings: &Settings,
    scratch: &mut CnnScratch<'_>,
    out: &mut [(Square, Source)],
) -> Result<usize, RunError> {
    let (w, h) = (frame.width, frame.height);
    if w == 0 || h == 0 || out.is_empty() {
        return Ok(0);
    }
    if let Some(source) = whole_frame(settings, w, h) {
        out[0] = (Square::centre(w, h), source);
        return Ok(1);
    }
    let found = cnn_faces(frame, det, factor, scratch)?;
    let rule = Settings {
        margin_percent: settings.cnn_margin_percent,
        ..*settings
    };
    let mut squares = 0;
    for d in found.iter() {
        if squares == out.len() {
            break;
        }
        let Some(face) = d.clamped_face(w, h) else {
            continue;
        };
        if let Some(square) = rule.square_of(&face, w, h) {
            out[squares] = (square, Source::Detected);
            squares += 1;
        }
    }
    Ok(squares)
}

/// The faces the CNN detector finds on `frame` shrunk by `factor` (score at least 0.5,
/// `DecodeParams::default`), their boxes and landmarks in frame pixels, largest first (ties:
/// higher score first, then position): [`cnn_face_squares`] before the crop rule, for the aligned
/// crop ([`crate::align`]).
///
/// # Errors
/// A frame too large for the scratch, or one the detector cannot take.
pub fn cnn_faces<'s>(
    frame: &GrayFrame<'_>,
    det: &CnnDetector<'_>,
    factor: usize,
    scratch: &'s mut CnnScratch<'_>,
) -> Result<&'s [Detection], RunError> {
    let (w, h) = (frame.width, frame.height);
    let multiple = det.max_stride();
    let (iw, ih) = input_size(w, h, factor, multiple).ok_or(RunError::FrameSize {
        width: w,
        height: h,
        multiple,
    })?;
    if scratch.input.len() < iw * ih {
        return Err(RunError::FrameLength {
            expected: iw * ih,
            got: scratch.input.len(),
        });
    }
    let input = &mut scratch.input[..iw * ih];
    prepare(frame, factor, (iw, ih), input);
    let plan = det.plan(iw, ih)?;
    det.run(&plan, input, scratch.arena)?;
    let n = decode(
        det,
        &plan,
        scratch.arena,
        &DecodeParams::default(),
        scratch.found,
    );
    let found = &mut scratch.found[..n];
    for d in found.iter_mut() {
        *d = d.in_frame(factor);
    }
    for i in 1..found.len() {
        let mut j = i;
        while j > 0 && larger(&found[j], &found[j - 1]) {
            found.swap(j, j - 1);
            j -= 1;
        }
    }
    Ok(found)
}

/// The model's 48x48 input for a face the CNN detector found, cropped along its eye line by
/// `rule` ([`crate::align::aligned_input`]), then the light rule `light`.
///
/// # Errors
/// [`AlignError::Degenerate`] when the detection's eyes coincide.
pub fn aligned_face_input(
    frame: &GrayFrame<'_>,
    face: &Detection,
    rule: AlignRule,
    light: Normalize,
    input: &mut [u8; INPUT_PIXELS],
) -> Result<(), AlignError> {
    let [right, left, ..] = face.landmarks;
    aligned_input(frame, (right, left), rule, input)?;
    light.apply(input, SIDE, SIDE);
    Ok(())
}

fn larger(a: &Detection, b: &Detection) -> bool {
    let area = |d: &Detection| i64::from(d.w) * i64::from(d.h);
    (area(a), a.score, -a.y, -a.x) > (area(b), b.score, -b.y, -b.x)
}

/// The model's 48x48 input for a face square of `frame`: edge-runtime's integer resize
/// ([`resize_to_input`]), then the published light normalization ([`INPUT_RULE`]): the one
/// image-to-input rule of training data, evaluation, `edge-cli` and the firmware.
///
/// # Errors
/// [`Error::Frame`] when the square does not lie inside the frame.
pub fn face_input(
    frame: &GrayFrame<'_>,
    square: Square,
    input: &mut [u8; INPUT_PIXELS],
) -> Result<(), Error> {
    face_input_with(frame, square, INPUT_RULE, input)
}

/// [`face_input`] with another light normalization (for measurements and for models trained
/// with another rule).
///
/// # Errors
/// [`Error::Frame`] when the square does not lie inside the frame.
pub fn face_input_with(
    frame: &GrayFrame<'_>,
    square: Square,
    rule: Normalize,
    input: &mut [u8; INPUT_PIXELS],
) -> Result<(), Error> {
    resize_to_input(frame, square, input).map_err(Error::Frame)?;
    rule.apply(input, SIDE, SIDE);
    Ok(())
}

/// The int8 logits of the face in `square` (its 48x48 input is built on the stack).
///
/// # Errors
/// A square outside the frame, or an arena smaller than [`Model::arena_size`].
pub fn classify(
    model: &Model<'_>,
    frame: &GrayFrame<'_>,
    square: Square,
    arena: &mut [i8],
) -> Result<Logits, Error> {
    let mut input = [0u8; INPUT_PIXELS];
    face_input(frame, square, &mut input)?;
    model.run(&input, arena)
}

/// Softmax scores of `logits`, dequantized with the model's output parameters.
pub fn scores(model: &Model<'_>, logits: &Logits) -> [f32; CLASS_COUNT] {
    crate::scores::softmax(logits, output_q(model))
}

/// The quantization parameters of the model's output (its last layer's).
pub fn output_q(model: &Model<'_>) -> QParams {
    model.layers().last().map_or(
        QParams {
            scale: 1.0,
            zero: 0,
        },
        |l| l.output,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crop_rule_moves_the_square_down_by_a_share_of_the_box() {
        let face = Face {
            x: 100,
            y: 60,
            w: 80,
            h: 80,
            neighbours: 3,
        };
        let plain = Settings::DEFAULT;
        let sq = plain.square_of(&face, 320, 240).unwrap();
        // 10% margin: side 88, centred on the box (centre 140, 100).
        assert_eq!((sq.x, sq.y, sq.side), (96, 56, 88));
        let down = Settings {
            shift_down_percent: 10,
            ..plain
        };
        let sq = down.square_of(&face, 320, 240).unwrap();
        assert_eq!((sq.x, sq.y, sq.side), (96, 64, 88));
        let up = Settings {
            shift_down_percent: -100,
            ..plain
        };
        // Moved above the frame: clamped to its top edge.
        let sq = up.square_of(&face, 320, 240).unwrap();
        assert_eq!((sq.x, sq.y, sq.side), (96, 0, 88));
    }

    fn frame(px: &[u8], w: usize, h: usize) -> GrayFrame<'_> {
        GrayFrame::new(px, w, h).unwrap()
    }

    fn run(
        px: &[u8],
        (w, h): (usize, usize),
        settings: &Settings,
    ) -> ([(Square, Source); 4], Found) {
        let mut integral = [0u32; 16];
        let (mut hits, mut faces) = ([Face::EMPTY; 4], [Face::EMPTY; 4]);
        let mut scratch = Scratch {
            integral: &mut integral,
            hits: &mut hits,
            faces: &mut faces,
        };
        let mut out = [(Square::centre(1, 1), Source::Centre); 4];
        let found = face_squares(&frame(px, w, h), None, settings, &mut scratch, &mut out);
        (out, found)
    }

    #[test]
    fn small_frames_are_crops_and_large_ones_need_the_detector() {
        let px = [0u8; 200 * 100];
        let (out, found) = run(&px, (96, 80), &Settings::DEFAULT);
        assert_eq!(found.squares, 1);
        assert_eq!(out[0], (Square::centre(96, 80), Source::Crop));
        // 97 wide is no crop: the detector decides, and without a cascade finds nothing.
        let (_, found) = run(&px, (97, 80), &Settings::DEFAULT);
        assert_eq!(found, Found::default());
        let centre = Settings::DEFAULT.with_mode(FaceMode::Centre);
        let (out, found) = run(&px, (200, 100), &centre);
        assert_eq!(found.squares, 1);
        assert_eq!(
            out[0],
            (
                Square {
                    x: 50,
                    y: 0,
                    side: 100
                },
                Source::Centre
            )
        );
        let detect = Settings::DEFAULT.with_mode(FaceMode::Detect);
        assert_eq!(run(&px, (48, 48), &detect).1, Found::default());
        assert_eq!(run(&px, (0, 48), &centre).1, Found::default());
    }

    #[test]
    fn large_photos_search_from_a_sixteenth_of_their_shorter_side() {
        let s = Settings::DEFAULT;
        assert_eq!(s.detect_params(320, 240).min_size, 24);
        assert_eq!(s.detect_params(1024, 768).min_size, 48);
        assert_eq!(s.with_min_face(48).detect_params(320, 240).min_size, 48);
        assert_eq!(s.detect_params(320, 240).scale_step, 282);
    }

    #[test]
    fn a_square_outside_the_frame_is_an_error() {
        let px = [7u8; 48 * 48];
        let mut input = [0u8; INPUT_PIXELS];
        let outside = Square {
            x: 10,
            y: 0,
            side: 48,
        };
        assert!(matches!(
            face_input(&frame(&px, 48, 48), outside, &mut input),
            Err(Error::Frame(_))
        ));
        face_input(&frame(&px, 48, 48), Square::centre(48, 48), &mut input).unwrap();
        assert_eq!(input, [7u8; INPUT_PIXELS]);
    }
}
