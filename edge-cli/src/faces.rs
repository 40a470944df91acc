//! Where the faces are: edge-runtime's LBP cascade detector (the published
//! `models/face_lbp.cascade`, embedded; `--cascade` to override), with the policy for images
//! that are already face crops.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{anyhow, Result};
use edge_runtime::detect::{detect, scratch_len, Cascade, DetectParams, Face};
use edge_runtime::preprocess::{GrayFrame, Square};

use crate::frame::Gray;
use fer_dataset::input::Kind;

/// The published face detector (OpenCV's lbpcascade_frontalface, converted), embedded.
pub static EMBEDDED_CASCADE: &[u8] = include_bytes!("../../models/face_lbp.cascade");

/// Margin around a detected box before the square crop: 10% measured best for the expression
/// accuracy (fer-checks, test face_detect).
pub const MARGIN_PERCENT: usize = 10;
/// Images at most this large on both sides are taken whole as face crops in `auto` mode:
/// FER-2013's own images are 48x48 crops, which the model was trained on as they are (the
/// detector would re-crop them to its own framing and change what the model sees).
pub const CROP_SIDE: usize = 96;

/// How faces are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FaceMode {
    /// An image of at most 96x96 is a face crop, taken whole; larger ones: detect faces.
    Auto,
    /// Detect faces only.
    Detect,
    /// No detector: the centred square of the image.
    Centre,
}

/// The detector with its cascade.
pub struct Detector {
    bytes: Cow<'static, [u8]>,
    mode: FaceMode,
}

/// How a face square was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Detected,
    Crop,
    Centre,
}

impl Detector {
    /// The embedded cascade or the file at `path`, validated.
    ///
    /// # Errors
    /// An unreadable or invalid cascade file, naming it.
    pub fn new(path: Option<&Path>, mode: FaceMode) -> Result<Self> {
        let bytes: Cow<'static, [u8]> = match path {
            None => Cow::Borrowed(EMBEDDED_CASCADE),
            Some(p) => Cow::Owned(fer_dataset::input::read(p, Kind::Cascade)?),
        };
        Cascade::from_bytes(&bytes).map_err(|e| {
            let name = path.map_or_else(
                || "the embedded cascade".into(),
                |p| p.display().to_string(),
            );
            anyhow!("{name} is not a valid face cascade: {e}")
        })?;
        Ok(Detector { bytes, mode })
    }

    /// Search settings for a `w × h` image: faces from 24 pixels, or 1/16 of the shorter side on
    /// large photos (smaller faces carry too little detail to classify).
    pub fn params(w: usize, h: usize) -> DetectParams {
        DetectParams {
            min_size: (w.min(h) / 16).max(24) as u32,
            ..DetectParams::default()
        }
    }

    /// Detected face boxes, largest first.
    ///
    /// # Errors
    /// None in practice (the cascade was validated); kept for a corrupt frame buffer.
    pub fn boxes(&self, gray: &Gray) -> Result<Vec<Face>> {
        let cascade = Cascade::from_bytes(&self.bytes).map_err(|e| anyhow!("{e}"))?;
        let frame =
            GrayFrame::new(&gray.pixels, gray.width, gray.height).map_err(|e| anyhow!("{e}"))?;
        let params = Self::params(gray.width, gray.height);
        let mut scratch = vec![0u32; scratch_len(&cascade, gray.width, gray.height, &params)];
        let mut hits = vec![Face::EMPTY; 4096];
        let mut faces = vec![Face::EMPTY; 64];
        let st = detect(
            &cascade,
            &frame,
            &params,
            &mut scratch,
            &mut hits,
            &mut faces,
        );
        Ok(faces[..st.faces].to_vec())
    }

    /// The face squares to classify, each with how it was chosen.
    ///
    /// # Errors
    /// As [`Detector::boxes`].
    pub fn squares(&self, gray: &Gray) -> Result<Vec<(Square, Source)>> {
        if gray.width == 0 || gray.height == 0 {
            return Ok(Vec::new());
        }
        let centre = Square::centre(gray.width, gray.height);
        if self.mode == FaceMode::Centre {
            return Ok(vec![(centre, Source::Centre)]);
        }
        if self.mode == FaceMode::Auto && gray.width.max(gray.height) <= CROP_SIDE {
            return Ok(vec![(centre, Source::Crop)]);
        }
        Ok(self
            .boxes(gray)?
            .iter()
            .filter_map(|f| {
                Square::around(
                    (f.x as usize, f.y as usize, f.w as usize, f.h as usize),
                    MARGIN_PERCENT,
                    gray.width,
                    gray.height,
                )
            })
            .map(|s| (s, Source::Detected))
            .collect())
    }
}
