//! Where the faces are: edge-runtime's face pipeline ([`edge_runtime::pipeline`]: the detector,
//! the crop policy, the margin) with the published detectors embedded: the LBP cascade
//! `models/face_lbp.cascade` (`--cascade` to override) and the CNN detector
//! `models/face_yunet_s.det` (`--detector cnn`).

use std::borrow::Cow;
use std::path::Path;

use anyhow::{anyhow, Result};
use edge_runtime::detect::cnn::decode::Detection;
use edge_runtime::detect::cnn::file::CnnDetector;
use edge_runtime::detect::cnn::input::input_size;
use edge_runtime::detect::{Cascade, Face};
pub use edge_runtime::pipeline::Source;
use edge_runtime::pipeline::{self, Scratch, Settings};
use edge_runtime::preprocess::{GrayFrame, Square};

use crate::frame::GrayFrameBuf;
use fer_dataset::safe_read::Kind;

/// The published face detector (OpenCV's lbpcascade_frontalface, converted), embedded.
pub static EMBEDDED_CASCADE: &[u8] = include_bytes!("../../models/face_lbp.cascade");
/// The CNN face detector (YuNet-s, int8), embedded.
pub static EMBEDDED_CNN: &[u8] = include_bytes!("../../models/face_yunet_s.det");

/// Which face detector runs (`--detector`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DetectorKind {
    /// OpenCV's LBP frontal-face cascade (`--cascade` to use another cascade file).
    Lbp,
    /// YuNet-s, the CNN detector (int8; on frames shrunk to at most 320 pixels a side): finds
    /// more tilted, small and partly hidden faces (docs/face-detection.md).
    Cnn,
}

/// How faces are found (the command-line names of [`pipeline::FaceMode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FaceMode {
    /// An image of at most 96x96 is a face crop, taken whole; larger ones: detect faces.
    Auto,
    /// Detect faces only.
    Detect,
    /// No detector: the centred square of the image.
    Centre,
}

impl DetectorKind {
    /// The detector a command runs: the one asked for; else the LBP cascade when a cascade file
    /// is given, the CNN detector otherwise (it finds more faces: docs/face-detection.md).
    pub fn chosen(asked: Option<DetectorKind>, cascade: Option<&Path>) -> DetectorKind {
        asked.unwrap_or(if cascade.is_some() {
            DetectorKind::Lbp
        } else {
            DetectorKind::Cnn
        })
    }
}

impl From<FaceMode> for pipeline::FaceMode {
    fn from(m: FaceMode) -> Self {
        match m {
            FaceMode::Auto => pipeline::FaceMode::Auto,
            FaceMode::Detect => pipeline::FaceMode::Detect,
            FaceMode::Centre => pipeline::FaceMode::Centre,
        }
    }
}

/// The detector with its file and the pipeline's settings.
pub struct Detector {
    kind: DetectorKind,
    bytes: Cow<'static, [u8]>,
    settings: Settings,
    max_faces: usize,
}

/// Raw hits kept per image before grouping.
const MAX_HITS: usize = 4096;
/// Faces kept per image by default (`--max-faces`), and the most a user may ask for.
pub const MAX_FACES: usize = 64;
pub const MAX_FACES_LIMIT: usize = 4096;

impl Detector {
    /// The detector of `kind`: the LBP cascade (embedded, or the file at `path`) or the embedded
    /// CNN detector (a `path` is refused: `--cascade` names a cascade file).
    ///
    /// # Errors
    /// An unreadable or invalid detector file, naming it; a cascade file given for the CNN.
    pub fn new(kind: DetectorKind, path: Option<&Path>, mode: FaceMode) -> Result<Self> {
        let bytes: Cow<'static, [u8]> = match (kind, path) {
            (DetectorKind::Lbp, None) => Cow::Borrowed(EMBEDDED_CASCADE),
            (DetectorKind::Lbp, Some(p)) => {
                Cow::Owned(fer_dataset::safe_read::read(p, Kind::Cascade)?)
            }
            (DetectorKind::Cnn, None) => Cow::Borrowed(EMBEDDED_CNN),
            (DetectorKind::Cnn, Some(p)) => anyhow::bail!(
                "--cascade {} is an LBP cascade file: it goes with --detector lbp",
                p.display()
            ),
        };
        let name = path.map_or_else(
            || "the embedded detector".into(),
            |p| p.display().to_string(),
        );
        match kind {
            DetectorKind::Lbp => {
                Cascade::from_bytes(&bytes)
                    .map_err(|e| anyhow!("{name} is not a valid face cascade: {e}"))?;
            }
            DetectorKind::Cnn => {
                CnnDetector::from_bytes(&bytes)
                    .map_err(|e| anyhow!("{name} is not a valid CNN face detector: {e}"))?;
            }
        }
        Ok(Detector {
            kind,
            bytes,
            settings: Settings::DEFAULT.with_mode(mode.into()),
            max_faces: MAX_FACES,
        })
    }

    /// Which detector this is.
    pub fn kind(&self) -> DetectorKind {
        self.kind
    }

    /// The same detector keeping at most `n` faces per image (largest first).
    ///
    /// # Errors
    /// `n` outside 1..=[`MAX_FACES_LIMIT`].
    pub fn with_max_faces(mut self, n: usize) -> Result<Self> {
        if !(1..=MAX_FACES_LIMIT).contains(&n) {
            anyhow::bail!("--max-faces is {n}, expected 1 to {MAX_FACES_LIMIT}");
        }
        self.max_faces = n;
        Ok(self)
    }

    /// The same detector with another crop rule around its boxes: `margin` percent of the box's
    /// side, the centre moved down by `shift_down` percent of its height (`None`: the
    /// pipeline's). For measuring crop rules.
    ///
    /// # Errors
    /// A margin outside 0..=200 or a shift outside -50..=50.
    pub fn with_crop(mut self, margin: Option<usize>, shift_down: Option<i32>) -> Result<Self> {
        if let Some(m) = margin {
            if m > 200 {
                anyhow::bail!("--margin is {m}, expected 0 to 200 (percent of the face box)");
            }
            match self.kind {
                DetectorKind::Lbp => self.settings.margin_percent = m,
                DetectorKind::Cnn => self.settings.cnn_margin_percent = m,
            }
        }
        if let Some(s) = shift_down {
            if !(-50..=50).contains(&s) {
                anyhow::bail!(
                    "--shift-down is {s}, expected -50 to 50 (percent of the box height)"
                );
            }
            self.settings.shift_down_percent = s;
        }
        Ok(self)
    }

    /// The most faces kept per image.
    pub fn max_faces(&self) -> usize {
        self.max_faces
    }

    /// The margin its crop rule adds around a box, percent of its side.
    pub fn margin_percent(&self) -> usize {
        match self.kind {
            DetectorKind::Lbp => self.settings.margin_percent,
            DetectorKind::Cnn => self.settings.cnn_margin_percent,
        }
    }

    /// The pipeline settings this detector runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The face squares to classify (largest face first), each with how it was chosen.
    ///
    /// # Errors
    /// None in practice (the detector was validated); kept for a corrupt frame buffer or a
    /// frame too large for the CNN detector (over 4096 pixels a side).
    pub fn squares(&self, gray: &GrayFrameBuf) -> Result<Vec<(Square, Source)>> {
        let frame = gray.view()?;
        let mut squares = vec![(Square::centre(1, 1), Source::Centre); self.max_faces];
        let found = match self.kind {
            DetectorKind::Lbp => self.cascade_squares(&frame, &mut squares)?,
            DetectorKind::Cnn => self.cnn_squares(&frame, &mut squares)?,
        };
        squares.truncate(found);
        Ok(squares)
    }

    fn cascade_squares(
        &self,
        frame: &GrayFrame<'_>,
        squares: &mut [(Square, Source)],
    ) -> Result<usize> {
        let cascade = Cascade::from_bytes(&self.bytes).map_err(|e| anyhow!("{e}"))?;
        let mut integral = vec![
            0u32;
            self.settings
                .integral_len(&cascade, frame.width, frame.height)
        ];
        let mut hits = vec![Face::EMPTY; MAX_HITS];
        let mut faces = vec![Face::EMPTY; self.max_faces];
        let mut scratch = Scratch {
            integral: &mut integral,
            hits: &mut hits,
            faces: &mut faces,
        };
        let found =
            pipeline::face_squares(frame, Some(&cascade), &self.settings, &mut scratch, squares);
        Ok(found.squares)
    }

    fn cnn_squares(
        &self,
        frame: &GrayFrame<'_>,
        squares: &mut [(Square, Source)],
    ) -> Result<usize> {
        self.with_cnn(frame, |det, factor, scratch| {
            pipeline::cnn_face_squares(frame, det, factor, &self.settings, scratch, squares)
        })
    }

    /// The CNN detector's faces on `gray` (boxes and landmarks in its pixels, largest first),
    /// for the aligned crop.
    ///
    /// # Errors
    /// This is the LBP cascade (it finds no landmarks), or a frame too large for the CNN.
    pub fn cnn_faces(&self, gray: &GrayFrameBuf) -> Result<Vec<Detection>> {
        if self.kind != DetectorKind::Cnn {
            anyhow::bail!("the aligned crop needs the CNN detector's landmarks (--detector cnn)");
        }
        let frame = gray.view()?;
        self.with_cnn(&frame, |det, factor, scratch| {
            pipeline::cnn_faces(&frame, det, factor, scratch).map(<[Detection]>::to_vec)
        })
    }

    /// Runs `f` with the CNN detector, the factor the pipeline shrinks `frame` by, and scratch
    /// sized for it.
    fn with_cnn<T>(
        &self,
        frame: &GrayFrame<'_>,
        f: impl FnOnce(
            &CnnDetector<'_>,
            usize,
            &mut pipeline::CnnScratch<'_>,
        ) -> Result<T, edge_runtime::detect::cnn::run::RunError>,
    ) -> Result<T> {
        let det = CnnDetector::from_bytes(&self.bytes).map_err(|e| anyhow!("{e}"))?;
        let (w, h) = (frame.width, frame.height);
        let factor = pipeline::cnn_factor(w, h, pipeline::CNN_MAX_SIDE);
        let (iw, ih) = input_size(w, h, factor, det.max_stride())
            .ok_or_else(|| anyhow!("a {w}x{h} frame is too large for the CNN face detector"))?;
        let plan = det.plan(iw, ih).map_err(|e| anyhow!("{e}"))?;
        let mut input = vec![0u8; iw * ih];
        let mut arena = vec![0i8; plan.arena_len()];
        let mut found = vec![Detection::EMPTY; self.max_faces.max(16)];
        let mut scratch = pipeline::CnnScratch {
            input: &mut input,
            arena: &mut arena,
            found: &mut found,
        };
        f(&det, factor, &mut scratch).map_err(|e| anyhow!("{e}"))
    }
}
