//! The optional parts of a recipe that switch on a training technique: distillation from
//! teachers' soft targets ([`Distill`], trained by [`crate::distill`]) and quantization-aware
//! fine-tuning ([`QuantAware`], trained by [`crate::fake_quant`]).

use serde::{Deserialize, Serialize};

use crate::int8_grid::RangeMethod;

/// The distillation part of a recipe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distill {
    /// Share of the soft (teacher) term in the loss, in [0, 1].
    pub weight: f64,
    /// Softmax temperature of teacher and student in the soft term; must be the one the
    /// targets were written with.
    pub temperature: f64,
}

/// Camera-like degradations of the raw training faces (`camera` in a recipe), applied before the
/// light rule, per image (see [`crate::camera_like`]): what a camera frame does to a face that
/// FER-2013's web images mostly do not. Each is drawn independently; a field at 0 is off.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    /// Probability of a lens/focus blur: a 3x3 binomial filter (`[1 2 1]²/16`).
    #[serde(default)]
    pub blur_p: f64,
    /// Probability of a small face: the face shrunk to a side in `lowres_side` (box filter) and
    /// resized back to 48 (bilinear), as a distant face the detector's crop enlarges.
    #[serde(default)]
    pub lowres_p: f64,
    #[serde(default = "Camera::lowres_default")]
    pub lowres_side: (usize, usize),
    /// Sensor noise: Gaussian, its standard deviation drawn in `[0, noise]` gray levels.
    #[serde(default)]
    pub noise: f64,
    /// Probability of a JPEG round trip at a quality drawn in `jpeg_quality`.
    #[serde(default)]
    pub jpeg_p: f64,
    #[serde(default = "Camera::jpeg_default")]
    pub jpeg_quality: (u8, u8),
}

impl Camera {
    /// Every degradation off, the ranges at their defaults (what a `camera` part of `{}` reads).
    pub const OFF: Camera = Camera {
        blur_p: 0.0,
        lowres_p: 0.0,
        lowres_side: (20, 40),
        noise: 0.0,
        jpeg_p: 0.0,
        jpeg_quality: (30, 90),
    };

    fn lowres_default() -> (usize, usize) {
        Self::OFF.lowres_side
    }
    fn jpeg_default() -> (u8, u8) {
        Self::OFF.jpeg_quality
    }
}

/// The `quant_aware` part of a recipe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantAware {
    /// How the activation ranges of the simulated int8 layers are taken from the calibration
    /// values (re-measured at the start of every epoch).
    pub ranges: RangeMethod,
}
