//! The face-detector file: a boosted cascade of multi-block LBP stumps (OpenCV's LBP cascade
//! model), converted from OpenCV's XML by `host-trainer cascade` into a compact little-endian
//! file read in place, validated once like the model file.
//!
//! ```text
//! preamble (16 bytes)  magic "FERC", version u16, reserved u16 (0), payload length u32,
//!                      CRC-32 of the payload u32
//! payload              window width u16, window height u16, stage count u16, feature count u16,
//!                      weak-classifier count u32
//!                      features: x u8, y u8, cell width u8, cell height u8      (4 bytes each)
//!                      stages:   weak count u16, reserved u16, threshold i32    (8 bytes each)
//!                      weak:     feature u16, reserved u16, subset [u32; 8],
//!                                leaf if the code's bit is set i32, leaf otherwise i32
//!                                                                              (44 bytes each)
//! ```
//!
//! Leaves and thresholds are OpenCV's floats in Q16 fixed point (× 65536, rounded to nearest):
//! a stage passes when the integer sum of its leaves is ≥ its threshold. With at most a few
//! dozen stumps per stage the rounding moves a stage sum by under 0.001 of the float value.

use core::fmt;

use crate::container::{u16_at, u32_at, Framing, FramingError};

/// Magic bytes of a cascade file.
pub const MAGIC: [u8; 4] = *b"FERC";
/// The format version this runtime reads.
pub const VERSION: u16 = 1;
/// Preamble size.
pub const PREAMBLE: usize = 16;
/// Fixed-point scale of leaves and thresholds.
pub const Q: i32 = 1 << 16;
const FEATURE: usize = 4;
const STAGE: usize = 8;
const WEAK: usize = 44;
const COUNTS: usize = 12;
/// Magic, version and checksum of the cascade file.
const FRAMING: Framing = Framing {
    magic: MAGIC,
    version: VERSION,
    preamble: PREAMBLE,
};

/// Why a cascade file was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CascadeError {
    /// Shorter than its header says.
    Truncated { needed: usize, got: usize },
    /// Does not start with `FERC`.
    BadMagic,
    /// Another format version.
    UnsupportedVersion { found: u16, supported: u16 },
    /// The payload's CRC-32 does not match.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// Bytes after the payload.
    TrailingBytes { extra: usize },
    /// The window is empty or over 255 pixels, or there are no stages or features.
    BadShape,
    /// Stage `stage` claims more weak classifiers than the file holds, or none.
    BadStage { stage: u16 },
    /// Weak classifier `weak` names a feature that does not exist.
    BadFeatureIndex { weak: u32 },
    /// Feature `feature`'s 3x3 cell grid does not fit the window.
    FeatureOutsideWindow { feature: u16 },
}

impl From<FramingError> for CascadeError {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::Truncated { needed, got } => CascadeError::Truncated { needed, got },
            FramingError::BadMagic => CascadeError::BadMagic,
            FramingError::UnsupportedVersion { found, supported } => {
                CascadeError::UnsupportedVersion { found, supported }
            }
            FramingError::TrailingBytes { extra } => CascadeError::TrailingBytes { extra },
            FramingError::ChecksumMismatch { stored, computed } => {
                CascadeError::ChecksumMismatch { stored, computed }
            }
        }
    }
}

impl fmt::Display for CascadeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CascadeError::Truncated { needed, got } => {
                write!(f, "cascade file truncated: needs {needed} bytes, has {got}")
            }
            CascadeError::BadMagic => f.write_str("not a cascade file: magic bytes are not FERC"),
            CascadeError::UnsupportedVersion { found, supported } => write!(
                f,
                "cascade format version {found} is not supported (this runtime reads version {supported})"
            ),
            CascadeError::ChecksumMismatch { stored, computed } => write!(
                f,
                "cascade file corrupted: CRC-32 is {computed:#010x}, header says {stored:#010x}"
            ),
            CascadeError::TrailingBytes { extra } => {
                write!(f, "cascade file has {extra} unexpected trailing bytes")
            }
            CascadeError::BadShape => f.write_str(
                "cascade has an empty or oversized window, or no stages or features",
            ),
            CascadeError::BadStage { stage } => {
                write!(f, "cascade stage {stage} has no weak classifiers or too many")
            }
            CascadeError::BadFeatureIndex { weak } => {
                write!(f, "cascade weak classifier {weak} names a missing feature")
            }
            CascadeError::FeatureOutsideWindow { feature } => {
                write!(f, "cascade feature {feature} lies outside the detection window")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CascadeError {}

/// One multi-block LBP feature: a 3x3 grid of `w × h` cells whose top-left corner is `(x, y)`
/// in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    pub x: u8,
    pub y: u8,
    pub w: u8,
    pub h: u8,
}

/// A validated cascade, borrowing the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Cascade<'a> {
    pub window_w: u16,
    pub window_h: u16,
    stages: &'a [u8],
    features: &'a [u8],
    weak: &'a [u8],
}

impl<'a> Cascade<'a> {
    /// Validates a cascade file: preamble, checksum, counts, every stage's classifier count, every
    /// feature index and every feature's placement in the window. Nothing in the detector can
    /// index out of bounds afterwards.
    ///
    /// # Errors
    /// The first [`CascadeError`] found.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, CascadeError> {
        FRAMING.check_head(bytes)?;
        let len = u32_at(bytes, 8) as usize;
        FRAMING.check_body(bytes, PREAMBLE.saturating_add(len), 12)?;
        let payload = &bytes[PREAMBLE..];
        if payload.len() < COUNTS {
            return Err(CascadeError::Truncated {
                needed: PREAMBLE + COUNTS,
                got: bytes.len(),
            });
        }
        let (ww, wh) = (u16_at(payload, 0), u16_at(payload, 2));
        let (n_stages, n_features) = (
            usize::from(u16_at(payload, 4)),
            usize::from(u16_at(payload, 6)),
        );
        let n_weak = u32_at(payload, 8) as usize;
        if ww == 0 || wh == 0 || ww > 255 || wh > 255 || n_stages == 0 || n_features == 0 {
            return Err(CascadeError::BadShape);
        }
        let body = COUNTS + n_features * FEATURE + n_stages * STAGE + n_weak.saturating_mul(WEAK);
        if payload.len() != body {
            return Err(CascadeError::Truncated {
                needed: PREAMBLE + body,
                got: bytes.len(),
            });
        }
        let features = &payload[COUNTS..COUNTS + n_features * FEATURE];
        let stages_at = COUNTS + n_features * FEATURE;
        let stages = &payload[stages_at..stages_at + n_stages * STAGE];
        let weak = &payload[stages_at + n_stages * STAGE..];
        let c = Cascade {
            window_w: ww,
            window_h: wh,
            stages,
            features,
            weak,
        };
        let mut total = 0usize;
        for s in 0..n_stages {
            let count = usize::from(u16_at(stages, s * STAGE));
            total += count;
            if count == 0 || total > n_weak {
                return Err(CascadeError::BadStage { stage: s as u16 });
            }
        }
        if total != n_weak {
            return Err(CascadeError::BadStage {
                stage: (n_stages - 1) as u16,
            });
        }
        for i in 0..n_features {
            let f = c.feature(i);
            let right = usize::from(f.x) + 3 * usize::from(f.w);
            let bottom = usize::from(f.y) + 3 * usize::from(f.h);
            if f.w == 0 || f.h == 0 || right > usize::from(ww) || bottom > usize::from(wh) {
                return Err(CascadeError::FeatureOutsideWindow { feature: i as u16 });
            }
        }
        for k in 0..n_weak {
            if usize::from(u16_at(weak, k * WEAK)) >= n_features {
                return Err(CascadeError::BadFeatureIndex { weak: k as u32 });
            }
        }
        Ok(c)
    }

    /// Number of stages.
    pub fn stage_count(&self) -> usize {
        self.stages.len() / STAGE
    }

    /// Number of features.
    pub fn feature_count(&self) -> usize {
        self.features.len() / FEATURE
    }

    /// Number of weak classifiers over all stages.
    pub fn weak_count(&self) -> usize {
        self.weak.len() / WEAK
    }

    /// Feature `i` (validated index).
    #[inline]
    pub fn feature(&self, i: usize) -> Feature {
        let b = &self.features[i * FEATURE..i * FEATURE + FEATURE];
        Feature {
            x: b[0],
            y: b[1],
            w: b[2],
            h: b[3],
        }
    }
}

/// A stage record's weak-classifier count and Q16 threshold.
#[inline]
pub(crate) fn stage_of(r: &[u8; STAGE]) -> (usize, i32) {
    (
        usize::from(u16::from_le_bytes([r[0], r[1]])),
        i32::from_le_bytes([r[4], r[5], r[6], r[7]]),
    )
}

/// A weak-classifier record's feature index.
#[inline]
pub(crate) fn weak_feature_of(r: &[u8; WEAK]) -> usize {
    usize::from(u16::from_le_bytes([r[0], r[1]]))
}

/// A weak-classifier record's two Q16 leaves (taken when the code is in its subset / when not).
#[inline]
pub(crate) fn leaves_of(r: &[u8; WEAK]) -> (i32, i32) {
    (
        i32::from_le_bytes([r[36], r[37], r[38], r[39]]),
        i32::from_le_bytes([r[40], r[41], r[42], r[43]]),
    )
}

/// A weak-classifier record's Q16 leaf for LBP code `code`: the first leaf when the code's bit
/// of the 256-bit subset is set, else the second.
#[inline]
pub(crate) fn weak_leaf_of(r: &[u8; WEAK], code: u8) -> i32 {
    let at = 4 + 4 * usize::from(code >> 5);
    let word = u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
    let leaf = if word & (1 << (code & 31)) != 0 {
        36
    } else {
        40
    };
    i32::from_le_bytes([r[leaf], r[leaf + 1], r[leaf + 2], r[leaf + 3]])
}

impl<'a> Cascade<'a> {
    /// The stage records, in order.
    #[inline]
    pub(crate) fn stage_records(&self) -> &'a [[u8; STAGE]] {
        self.stages.as_chunks().0
    }

    /// The weak-classifier records, stage after stage.
    #[inline]
    pub(crate) fn weak_records(&self) -> &'a [[u8; WEAK]] {
        self.weak.as_chunks().0
    }

    /// The feature records: `[x, y, cell width, cell height]`.
    #[inline]
    pub(crate) fn feature_records(&self) -> &'a [[u8; FEATURE]] {
        self.features.as_chunks().0
    }
}

/// A cascade in memory, for writing files (host side).
#[cfg(any(test, feature = "std"))]
#[derive(Clone, Debug, PartialEq)]
pub struct CascadeSpec {
    pub window_w: u16,
    pub window_h: u16,
    pub features: std::vec::Vec<Feature>,
    /// Per stage: threshold (float) and its weak classifiers.
    pub stages: std::vec::Vec<(f64, std::vec::Vec<WeakSpec>)>,
}

/// One weak classifier as OpenCV stores it.
#[cfg(any(test, feature = "std"))]
#[derive(Clone, Debug, PartialEq)]
pub struct WeakSpec {
    pub feature: u16,
    pub subset: [u32; 8],
    /// Leaf when the feature's code is in the subset, and when it is not.
    pub leaves: [f64; 2],
}

#[cfg(any(test, feature = "std"))]
fn q16(v: f64) -> i32 {
    (v * f64::from(Q)).round() as i32
}

#[cfg(any(test, feature = "std"))]
impl CascadeSpec {
    /// Encodes the file, and validates it with [`Cascade::from_bytes`].
    ///
    /// # Errors
    /// A spec that does not make a valid cascade (counts out of range, features outside the
    /// window, indices out of range).
    pub fn encode(&self) -> Result<std::vec::Vec<u8>, CascadeError> {
        let n_weak: usize = self.stages.iter().map(|(_, w)| w.len()).sum();
        let too_big = self.features.len() > usize::from(u16::MAX)
            || self.stages.len() > usize::from(u16::MAX)
            || self
                .stages
                .iter()
                .any(|(_, w)| w.len() > usize::from(u16::MAX));
        if too_big {
            return Err(CascadeError::BadShape);
        }
        let mut p = std::vec::Vec::new();
        p.extend_from_slice(&self.window_w.to_le_bytes());
        p.extend_from_slice(&self.window_h.to_le_bytes());
        p.extend_from_slice(&(self.stages.len() as u16).to_le_bytes());
        p.extend_from_slice(&(self.features.len() as u16).to_le_bytes());
        p.extend_from_slice(&(n_weak as u32).to_le_bytes());
        for f in &self.features {
            p.extend_from_slice(&[f.x, f.y, f.w, f.h]);
        }
        for (threshold, weak) in &self.stages {
            p.extend_from_slice(&(weak.len() as u16).to_le_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&q16(*threshold).to_le_bytes());
        }
        for (_, weak) in &self.stages {
            for w in weak {
                p.extend_from_slice(&w.feature.to_le_bytes());
                p.extend_from_slice(&[0, 0]);
                for s in w.subset {
                    p.extend_from_slice(&s.to_le_bytes());
                }
                p.extend_from_slice(&q16(w.leaves[0]).to_le_bytes());
                p.extend_from_slice(&q16(w.leaves[1]).to_le_bytes());
            }
        }
        let mut out = std::vec![0u8; PREAMBLE];
        FRAMING.write_head(&mut out);
        out[8..12].copy_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&p);
        FRAMING.seal(&mut out, 12);
        Cascade::from_bytes(&out)?;
        Ok(out)
    }
}
