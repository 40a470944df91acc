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
    pub learning_rate: f64,
    pub seconds: f64,
}
