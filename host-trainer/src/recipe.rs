//! Training recipes: the paper's, exactly, and our default that beats it at the same size.

use serde::{Deserialize, Serialize};

use crate::model::DropoutRates;

/// What early stopping watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Monitor {
    /// Lowest validation loss is best.
    ValLoss,
    /// Highest validation accuracy is best.
    ValAccuracy,
}

/// The learning rate over training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Schedule {
    /// The same rate throughout (the paper).
    Constant,
    /// Linear warm-up over `warmup_epochs`, then cosine decay to `final_fraction` of the base rate
    /// at the end of the last epoch, updated every step.
    Cosine {
        warmup_epochs: f64,
        final_fraction: f64,
    },
}

/// Every knob of a training run. Saved next to the model and in each checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recipe {
    pub name: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub schedule: Schedule,
    /// Random horizontal flips (p = 0.5).
    pub flip: bool,
    /// Random translations of up to this many pixels in x and y (edge pixels repeated).
    pub max_shift: usize,
    pub dropout: DropoutRates,
    pub monitor: Monitor,
    /// Epochs without improvement of `monitor` before stopping; the best weights are restored.
    pub patience: usize,
    pub seed: u64,
}

impl Recipe {
    /// The paper, exactly: Adam lr 0.0005, batch 40, 20 epochs, no augmentation. Choices the paper
    /// leaves open: the two Dropouts after Flatten at 0.25, early stopping with patience 5 on the
    /// validation loss (the Keras default monitor), restoring the best weights, input x/255.
    pub fn paper() -> Self {
        Recipe {
            name: "paper".into(),
            epochs: 20,
            batch_size: 40,
            learning_rate: 0.0005,
            schedule: Schedule::Constant,
            flip: false,
            max_shift: 0,
            dropout: DropoutRates::default(),
            monitor: Monitor::ValLoss,
            patience: 5,
            seed: 42,
        }
    }

    /// Our default: the same network, optimizer, batch and epoch count, plus the two cheapest
    /// recipes known to help small FER-2013 CNNs: random horizontal flips and shifts of up to 4
    /// pixels (faces are roughly symmetric and FER crops are loosely aligned), and a cosine
    /// learning-rate decay after a one-epoch warm-up (large steps early, fine steps at the end).
    /// Early stopping watches validation accuracy, the figure we report.
    pub fn default_recipe() -> Self {
        Recipe {
            name: "default".into(),
            epochs: 20,
            learning_rate: 0.001,
            schedule: Schedule::Cosine {
                warmup_epochs: 1.0,
                final_fraction: 0.02,
            },
            flip: true,
            max_shift: 4,
            monitor: Monitor::ValAccuracy,
            patience: 6,
            ..Self::paper()
        }
    }

    /// Looks a preset up by name.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "paper" => Some(Self::paper()),
            "default" => Some(Self::default_recipe()),
            _ => None,
        }
    }

    /// Learning rate at `progress` epochs into training (fractional).
    pub fn lr_at(&self, progress: f64) -> f64 {
        match self.schedule {
            Schedule::Constant => self.learning_rate,
            Schedule::Cosine {
                warmup_epochs,
                final_fraction,
            } => {
                if progress < warmup_epochs {
                    return self.learning_rate * (progress / warmup_epochs).max(0.01);
                }
                let span = (self.epochs as f64 - warmup_epochs).max(1e-9);
                let t = ((progress - warmup_epochs) / span).clamp(0.0, 1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                self.learning_rate * (final_fraction + (1.0 - final_fraction) * cos)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_the_floor() {
        let r = Recipe::default_recipe();
        assert!(r.lr_at(0.5) < r.lr_at(0.99));
        assert!((r.lr_at(1.0) - r.learning_rate).abs() < 1e-12);
        assert!(r.lr_at(10.0) < r.learning_rate);
        let end = r.lr_at(r.epochs as f64);
        assert!((end - r.learning_rate * 0.02).abs() < 1e-12);
        assert_eq!(Recipe::paper().lr_at(7.3), 0.0005);
    }
}
