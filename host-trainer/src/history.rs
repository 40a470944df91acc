//! What a run records about each finished epoch (the training curves and the run's history file
//! are drawn from it).

use serde::{Deserialize, Serialize};

/// Metrics of one finished epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Macro-averaged F1 on validation (each class counts the same: the weak classes show);
    /// absent in histories written before 2026-12-06.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_macro_f1: Option<f64>,
    pub learning_rate: f64,
    pub seconds: f64,
}
