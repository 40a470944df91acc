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

/// The `quant_aware` part of a recipe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantAware {
    /// How the activation ranges of the simulated int8 layers are taken from the calibration
    /// values (re-measured at the start of every epoch).
    pub ranges: RangeMethod,
}
