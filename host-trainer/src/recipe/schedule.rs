//! The learning rate over a run: constant, cosine with warm restarts, or reduced on plateaus of
//! the validation figure; and what extending a finished run does to it.

use serde::{Deserialize, Serialize};

use super::Recipe;
use crate::history::EpochStats;

/// The learning rate over training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum Schedule {
    /// The same rate throughout (the paper).
    Constant,
    /// Linear warm-up over `warmup_epochs`, then cosine decay to `final_fraction` of the base rate
    /// at the end of the last epoch, updated every step.
    ///
    /// `restarts` lists earlier ends of the run (ascending): before each, the cosine decays to the
    /// floor at that epoch; after it, the rate jumps to where a cosine over the next horizon
    /// stands and decays again (a warm restart). This is exactly what extending a finished run
    /// with a larger `--epochs` does, so a run made in legs can be replayed in one go.
    Cosine {
        warmup_epochs: f64,
        final_fraction: f64,
        #[serde(default)]
        restarts: Vec<usize>,
    },
    /// Linear warm-up over `warmup_epochs`, then the base rate, multiplied by `factor` each time
    /// the recipe's `monitor` has not improved for `patience` epochs in a row (the count starts
    /// again after a reduction), never below `min_fraction` of the base rate (Keras'
    /// `ReduceLROnPlateau` without cooldown). The rate of an epoch follows from the figures of the
    /// epochs before it, so a resumed or replayed run gets the same rates.
    Plateau {
        warmup_epochs: f64,
        factor: f64,
        patience: usize,
        min_fraction: f64,
    },
}

impl Recipe {
    /// The first epoch (0-based) of the last learning-rate cycle: the last restart inside the
    /// run, or 0.
    pub fn last_cycle_start(&self) -> usize {
        match &self.schedule {
            Schedule::Cosine { restarts, .. } => restarts
                .iter()
                .copied()
                .filter(|&r| r < self.epochs)
                .max()
                .unwrap_or(0),
            Schedule::Constant | Schedule::Plateau { .. } => 0,
        }
    }

    /// Records that a run which ended after `old_epochs` continues to `self.epochs`: the epochs
    /// already trained keep the learning and Dropout rates they had, and the extension is a warm
    /// restart.
    pub fn extend_from(&mut self, old_epochs: usize) {
        if old_epochs >= self.epochs {
            return;
        }
        if let Schedule::Cosine { restarts, .. } = &mut self.schedule {
            // Restarts at or past the old end never happened in that run.
            restarts.retain(|&r| r < old_epochs);
            let old_last_cycle = restarts.iter().copied().max().unwrap_or(0);
            restarts.push(old_epochs);
            // The lighter head Dropout stays where it started; the new cycle keeps it.
            if self.last_cycle_head_dropout.is_some() && self.head_dropout_from.is_none() {
                self.head_dropout_from = Some(old_last_cycle);
            }
        }
    }

    /// Learning rate at `progress` epochs into training (fractional), after the finished epochs
    /// `history` (only a plateau schedule reads their figures; the others are a function of
    /// `progress` alone).
    pub fn lr_at(&self, progress: f64, history: &[EpochStats]) -> f64 {
        match self.schedule {
            Schedule::Constant => self.learning_rate,
            Schedule::Plateau {
                warmup_epochs,
                factor,
                patience,
                min_fraction,
            } => {
                if let Some(rate) = self.warming_up(progress, warmup_epochs) {
                    return rate;
                }
                let reductions = self.plateau_reductions(history, patience);
                let scale = factor
                    .powi(reductions.min(1 << 16) as i32)
                    .max(min_fraction);
                self.learning_rate * scale
            }
            Schedule::Cosine {
                warmup_epochs,
                final_fraction,
                ref restarts,
            } => {
                if let Some(rate) = self.warming_up(progress, warmup_epochs) {
                    return rate;
                }
                let horizon = restarts
                    .iter()
                    .copied()
                    .find(|&end| end < self.epochs && progress < end as f64)
                    .unwrap_or(self.epochs);
                let span = (horizon as f64 - warmup_epochs).max(1e-9);
                let t = ((progress - warmup_epochs) / span).clamp(0.0, 1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                self.learning_rate * (final_fraction + (1.0 - final_fraction) * cos)
            }
        }
    }

    /// The rate during a linear warm-up over `warmup_epochs` (from 1% of the base rate), or
    /// `None` after it.
    fn warming_up(&self, progress: f64, warmup_epochs: f64) -> Option<f64> {
        (progress < warmup_epochs)
            .then(|| self.learning_rate * (progress / warmup_epochs).max(0.01))
    }

    /// How many times a plateau of `patience` epochs without improvement of the monitor occurred
    /// in `history`.
    fn plateau_reductions(&self, history: &[EpochStats], patience: usize) -> usize {
        let mut best = None;
        let mut waited = 0;
        let mut reductions = 0;
        for e in history {
            let value = self.monitor.value(e.val_loss, e.val_accuracy);
            if self.monitor.improves(value, best) {
                best = Some(value);
                waited = 0;
            } else {
                waited += 1;
                if waited >= patience.max(1) {
                    reductions += 1;
                    waited = 0;
                }
            }
        }
        reductions
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_the_floor() {
        let r = Recipe::v1();
        assert!(r.lr_at(0.5, &[]) < r.lr_at(0.99, &[]));
        assert!((r.lr_at(1.0, &[]) - r.learning_rate).abs() < 1e-12);
        assert!(r.lr_at(10.0, &[]) < r.learning_rate);
        let floor = r.learning_rate * 0.02;
        assert!((r.lr_at(r.epochs as f64, &[]) - floor).abs() < 1e-12);
        // Each cycle ends at the floor; the restarts jump to 53%, 27% and 17% of the base rate.
        for (end, peak) in [(20, 0.53), (40, 0.27), (60, 0.17)] {
            assert!(
                (r.lr_at(end as f64 - 1e-7, &[]) - floor).abs() < 1e-9,
                "end {end}"
            );
            let restart = r.lr_at(end as f64, &[]) / r.learning_rate;
            assert!((restart - peak).abs() < 0.01, "restart at {end}: {restart}");
        }
        assert_eq!(Recipe::paper().lr_at(7.3, &[]), 0.0005);
    }

    /// `r` with one cosine and no restarts.
    pub(crate) fn without_restarts(mut r: Recipe) -> Recipe {
        r.schedule = Schedule::Cosine {
            warmup_epochs: 1.0,
            final_fraction: 0.02,
            restarts: vec![],
        };
        r
    }

    #[test]
    fn restarts_replay_a_run_extended_in_legs() {
        let mut leg = without_restarts(Recipe::v1());
        leg.epochs = 20;
        let first: Vec<f64> = (0..200).map(|i| leg.lr_at(i as f64 / 10.0, &[])).collect();
        leg.epochs = 40;
        leg.extend_from(20);
        leg.epochs = 55;
        leg.extend_from(40);
        let mut whole = Recipe::v1();
        whole.epochs = 55;
        whole.schedule = Schedule::Cosine {
            warmup_epochs: 1.0,
            final_fraction: 0.02,
            restarts: vec![20, 40],
        };
        for p in [0.5, 3.0, 19.9, 20.0, 27.5, 39.99, 40.0, 50.0, 55.0] {
            assert!(
                (leg.lr_at(p, &[]) - whole.lr_at(p, &[])).abs() < 1e-15,
                "at {p}"
            );
        }
        for (i, lr) in first.iter().enumerate() {
            assert_eq!(*lr, whole.lr_at(i as f64 / 10.0, &[]), "first leg changed");
        }
        // The floor at each leg's end, then a jump back up.
        let floor = whole.learning_rate * 0.02;
        assert!((whole.lr_at(19.999_999, &[]) - floor).abs() < 1e-9);
        assert!(whole.lr_at(20.0, &[]) > 10.0 * floor);
        assert!((whole.lr_at(55.0, &[]) - floor).abs() < 1e-12);
        // Restarts past a shortened run are ignored: --epochs 10 decays over 10 epochs.
        let mut short = whole.clone();
        short.epochs = 10;
        assert!((short.lr_at(10.0, &[]) - floor).abs() < 1e-12);
    }

    #[test]
    fn extending_a_shortened_run_drops_the_restarts_it_never_reached() {
        let mut r = Recipe::v1();
        r.epochs = 30;
        let done: Vec<f64> = (0..300).map(|i| r.lr_at(i as f64 / 10.0, &[])).collect();
        r.epochs = 50;
        r.extend_from(30);
        assert_eq!(
            r.schedule,
            Schedule::Cosine {
                warmup_epochs: 1.0,
                final_fraction: 0.02,
                restarts: vec![20, 30],
            }
        );
        for (i, lr) in done.iter().enumerate() {
            assert_eq!(
                *lr,
                r.lr_at(i as f64 / 10.0, &[]),
                "epoch {} changed",
                i as f64 / 10.0
            );
        }
    }

    /// A plateau schedule with a one-epoch warm-up.
    pub(crate) fn plateau(factor: f64, patience: usize, min_fraction: f64) -> Schedule {
        Schedule::Plateau {
            warmup_epochs: 1.0,
            factor,
            patience,
            min_fraction,
        }
    }

    /// Finished epochs with these validation accuracies.
    fn history(accuracies: &[f64]) -> Vec<EpochStats> {
        accuracies
            .iter()
            .enumerate()
            .map(|(e, &a)| EpochStats {
                epoch: e + 1,
                train_loss: 1.0,
                train_accuracy: 0.5,
                val_loss: 1.0,
                val_accuracy: a,
                val_macro_f1: None,
                learning_rate: 0.0,
                seconds: 1.0,
            })
            .collect()
    }

    #[test]
    fn plateau_halves_the_rate_after_patience_epochs_without_improvement() {
        let mut r = Recipe::v2();
        r.schedule = plateau(0.5, 2, 0.2);
        let base = r.learning_rate;
        // Warm-up, then the base rate while the monitor (validation accuracy) improves.
        assert!(r.lr_at(0.5, &[]) < base);
        let h = history(&[
            0.40, 0.50, 0.55, 0.55, 0.54, 0.60, 0.59, 0.58, 0.57, 0.56, 0.55, 0.54,
        ]);
        let rate = |epochs: usize| r.lr_at(epochs as f64 + 0.5, &h[..epochs]) / base;
        assert_eq!(rate(3), 1.0);
        assert_eq!(rate(4), 1.0, "one epoch without improvement");
        assert_eq!(rate(5), 0.5, "two: the first reduction");
        assert_eq!(rate(6), 0.5, "0.60 improves: the count starts again");
        assert_eq!(rate(7), 0.5);
        assert_eq!(rate(8), 0.25);
        assert_eq!(rate(10), 0.2, "0.125 is under the floor");
        assert_eq!(rate(12), 0.2);
        // (Epoch 4's 0.55 ties epoch 3's: a tie is no improvement.) On validation loss, lower
        // is better.
        r.monitor = super::super::Monitor::ValLoss;
        let mut h = history(&[0.5; 4]);
        for (e, loss) in h.iter_mut().zip([1.0, 0.9, 0.8, 0.7]) {
            e.val_loss = loss;
        }
        assert_eq!(r.lr_at(4.5, &h) / base, 1.0);
        assert_eq!(r.last_cycle_start(), 0);
    }

    #[test]
    fn a_plateau_recipe_replays_its_own_run() {
        let mut r = Recipe::v2();
        r.schedule = plateau(0.5, 2, 0.01);
        let batches = 10;
        let mut h = history(&[0.40, 0.50, 0.50, 0.50, 0.45, 0.52, 0.51]);
        for e in 0..h.len() {
            let rate = r.lr_at(e as f64 + 0.9, &h[..e]);
            h[e].learning_rate = rate;
        }
        assert_eq!(h[4].learning_rate, r.learning_rate * 0.5);
        assert!(r.replays(&r, &h, batches));
        // The same figures under a cosine were trained with other rates.
        assert!(!Recipe::v2().replays(&r, &h, batches));
    }
}
