//! The learning rate over a run: constant or cosine with warm restarts, and what extending a
//! finished run does to it.

use serde::{Deserialize, Serialize};

use super::Recipe;

/// The learning rate over training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
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
            Schedule::Constant => 0,
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

    /// Learning rate at `progress` epochs into training (fractional).
    pub fn lr_at(&self, progress: f64) -> f64 {
        match self.schedule {
            Schedule::Constant => self.learning_rate,
            Schedule::Cosine {
                warmup_epochs,
                final_fraction,
                ref restarts,
            } => {
                if progress < warmup_epochs {
                    return self.learning_rate * (progress / warmup_epochs).max(0.01);
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
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_the_floor() {
        let r = Recipe::default_recipe();
        assert!(r.lr_at(0.5) < r.lr_at(0.99));
        assert!((r.lr_at(1.0) - r.learning_rate).abs() < 1e-12);
        assert!(r.lr_at(10.0) < r.learning_rate);
        let floor = r.learning_rate * 0.02;
        assert!((r.lr_at(r.epochs as f64) - floor).abs() < 1e-12);
        // Each cycle ends at the floor; the restarts jump to 53%, 27% and 17% of the base rate.
        for (end, peak) in [(20, 0.53), (40, 0.27), (60, 0.17)] {
            assert!(
                (r.lr_at(end as f64 - 1e-7) - floor).abs() < 1e-9,
                "end {end}"
            );
            let restart = r.lr_at(end as f64) / r.learning_rate;
            assert!((restart - peak).abs() < 0.01, "restart at {end}: {restart}");
        }
        assert_eq!(Recipe::paper().lr_at(7.3), 0.0005);
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
        let mut leg = without_restarts(Recipe::default_recipe());
        leg.epochs = 20;
        let first: Vec<f64> = (0..200).map(|i| leg.lr_at(i as f64 / 10.0)).collect();
        leg.epochs = 40;
        leg.extend_from(20);
        leg.epochs = 55;
        leg.extend_from(40);
        let mut whole = Recipe::default_recipe();
        whole.epochs = 55;
        whole.schedule = Schedule::Cosine {
            warmup_epochs: 1.0,
            final_fraction: 0.02,
            restarts: vec![20, 40],
        };
        for p in [0.5, 3.0, 19.9, 20.0, 27.5, 39.99, 40.0, 50.0, 55.0] {
            assert!((leg.lr_at(p) - whole.lr_at(p)).abs() < 1e-15, "at {p}");
        }
        for (i, lr) in first.iter().enumerate() {
            assert_eq!(*lr, whole.lr_at(i as f64 / 10.0), "first leg changed");
        }
        // The floor at each leg's end, then a jump back up.
        let floor = whole.learning_rate * 0.02;
        assert!((whole.lr_at(19.999_999) - floor).abs() < 1e-9);
        assert!(whole.lr_at(20.0) > 10.0 * floor);
        assert!((whole.lr_at(55.0) - floor).abs() < 1e-12);
        // Restarts past a shortened run are ignored: --epochs 10 decays over 10 epochs.
        let mut short = whole.clone();
        short.epochs = 10;
        assert!((short.lr_at(10.0) - floor).abs() < 1e-12);
    }

    #[test]
    fn extending_a_shortened_run_drops_the_restarts_it_never_reached() {
        let mut r = Recipe::default_recipe();
        r.epochs = 30;
        let done: Vec<f64> = (0..300).map(|i| r.lr_at(i as f64 / 10.0)).collect();
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
                r.lr_at(i as f64 / 10.0),
                "epoch {} changed",
                i as f64 / 10.0
            );
        }
    }
}
