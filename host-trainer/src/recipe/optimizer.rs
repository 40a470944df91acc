//! The optimizer that turns gradients into steps.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

/// The optimizer that turns gradients into steps (its rate comes from the schedule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum Optimizer {
    /// Adam with burn's defaults (betas 0.9 and 0.999, epsilon 1e-5): the paper's.
    #[default]
    Adam,
    /// SGD with momentum (no dampening, as in PyTorch), Nesterov's variant when `nesterov`, and
    /// an L2 penalty `weight_decay` added to every gradient.
    Sgd {
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
}

impl Optimizer {
    pub(super) fn is_adam(&self) -> bool {
        *self == Optimizer::Adam
    }

    /// A fresh optimizer of this kind.
    pub fn init(&self) -> ModuleOptimizer {
        match *self {
            Optimizer::Adam => AdamConfig::new().init(),
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => SgdConfig::new()
                .with_momentum(Some(
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov),
                ))
                .with_weight_decay(
                    (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
                )
                .init(),
        }
    }
}
