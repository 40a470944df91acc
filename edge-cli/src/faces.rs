//! Where the faces are: edge-runtime's face pipeline ([`edge_runtime::pipeline`]: the detector,
//! the crop policy, the margin) with the published `models/face_lbp.cascade` embedded
//! (`--cascade` to override).

use std::borrow::Cow;
use std::path::Path;

use anyhow::{anyhow, Result};
use edge_runtime::detect::{Cascade, Face};
pub use edge_runtime::pipeline::Source;
use edge_runtime::pipeline::{self, Scratch, Settings};
use edge_runtime::preprocess::{GrayFrame, Square};

use crate::frame::Gray;
use fer_dataset::input::Kind;

/// The published face detector (OpenCV's lbpcascade_frontalface, converted), embedded.
pub static EMBEDDED_CASCADE: &[u8] = include_bytes!("../../models/face_lbp.cascade");

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

impl From<FaceMode> for pipeline::FaceMode {
    fn from(m: FaceMode) -> Self {
        match m {
            FaceMode::Auto => pipeline::FaceMode::Auto,
            FaceMode::Detect => pipeline::FaceMode::Detect,
            FaceMode::Centre => pipeline::FaceMode::Centre,
        }
    }
}

/// The detector with its cascade and the pipeline's settings.
pub struct Detector {
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
        Ok(Detector {
            bytes,
            settings: Settings::DEFAULT.with_mode(mode.into()),
            max_faces: MAX_FACES,
        })
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
            self.settings.margin_percent = m;
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

    /// The pipeline settings this detector runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The face squares to classify (largest face first), each with how it was chosen.
    ///
    /// # Errors
    /// None in practice (the cascade was validated); kept for a corrupt frame buffer.
    pub fn squares(&self, gray: &Gray) -> Result<Vec<(Square, Source)>> {
        let cascade = Cascade::from_bytes(&self.bytes).map_err(|e| anyhow!("{e}"))?;
        let frame =
            GrayFrame::new(&gray.pixels, gray.width, gray.height).map_err(|e| anyhow!("{e}"))?;
        let mut integral = vec![
            0u32;
            self.settings
                .integral_len(&cascade, gray.width, gray.height)
        ];
        let mut hits = vec![Face::EMPTY; MAX_HITS];
        let mut faces = vec![Face::EMPTY; self.max_faces];
        let mut scratch = Scratch {
            integral: &mut integral,
            hits: &mut hits,
            faces: &mut faces,
        };
        let mut squares = vec![(Square::centre(1, 1), Source::Centre); self.max_faces];
        let found = pipeline::face_squares(
            &frame,
            Some(&cascade),
            &self.settings,
            &mut scratch,
            &mut squares,
        );
        squares.truncate(found.squares);
        Ok(squares)
    }
}
