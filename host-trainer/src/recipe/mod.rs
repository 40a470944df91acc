//! Training recipes: every knob of a run, the paper's recipe exactly and ours beside it.
//!
//! - this file: [`Recipe`] itself, what each epoch trains with ([`Recipe::augment_at`],
//!   [`Recipe::dropout_at`]) and whether a checkpoint may continue under a recipe
//!   ([`Recipe::replays`]);
//! - `presets`: the named recipes (`paper`, `default`, and the earlier `v1`, `v2`, `v3`);
//! - `schedule`: the learning rate over the run, warm restarts, extending a finished run;
//! - `optimizer`: Adam or SGD;
//! - `check`: the field-by-field check of a recipe read from a file.

pub mod check;
mod optimizer;
mod parts;
mod presets;
mod schedule;

use serde::{Deserialize, Serialize};

use crate::augment::Distort;
use crate::history::EpochStats;
use crate::model::DropoutRates;
use edge_runtime::normalize::{Normalize, INPUT_RULE};

pub use optimizer::Optimizer;
pub use parts::{Camera, Distill, QuantAware};
pub use schedule::Schedule;

/// What early stopping watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Monitor {
    /// Lowest validation loss is best.
    ValLoss,
    /// Highest validation accuracy is best.
    ValAccuracy,
}

impl Monitor {
    /// The watched figure of a validation pass.
    pub fn value(self, val_loss: f64, val_accuracy: f64) -> f64 {
        match self {
            Monitor::ValLoss => val_loss,
            Monitor::ValAccuracy => val_accuracy,
        }
    }

    /// Whether `value` beats `best` (no best yet: it does).
    pub fn improves(self, value: f64, best: Option<f64>) -> bool {
        match (self, best) {
            (_, None) => true,
            (Monitor::ValLoss, Some(best)) => value < best,
            (Monitor::ValAccuracy, Some(best)) => value > best,
        }
    }
}

/// The augmentation applied to one epoch's training images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// Random horizontal flips (p = 0.5).
    pub flip: bool,
    /// Random translations of up to this many pixels in x and y.
    pub max_shift: usize,
    /// Random rotation, zoom, translation, jitter and erasing (instead of `max_shift`).
    pub distort: Option<Distort>,
    /// Camera-like degradations of the raw face before the light rule.
    pub camera: Option<Camera>,
}

impl Augment {
    /// Whether this changes any image.
    pub fn is_active(&self) -> bool {
        self.flip || self.max_shift > 0 || self.distort.is_some() || self.camera.is_some()
    }
}

/// Every knob of a training run. Saved next to the model and in each checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub schedule: Schedule,
    /// Adam unless a recipe says otherwise.
    #[serde(default, skip_serializing_if = "Optimizer::is_adam")]
    pub optimizer: Optimizer,
    /// Random horizontal flips (p = 0.5).
    pub flip: bool,
    /// Random translations of up to this many pixels in x and y (edge pixels repeated).
    pub max_shift: usize,
    /// Random distortions (rotation, zoom, translation, jitter, erasing) instead of the plain
    /// shifts of `max_shift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distort: Option<Distort>,
    /// Shifts (and distortions) apply in the first this many epochs only (`None`: in all of
    /// them); the last epochs then fit the images as they are (flips stay).
    #[serde(default)]
    pub shift_epochs: Option<usize>,
    /// Label smoothing of the cross-entropy loss (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// Class-balanced loss: each training face's cross-entropy weighted by `n_c^(−class_balance)`
    /// of its class's count in the training split (0: every face alike; 1: inverse frequency;
    /// 0.5: inverse square root), the weights' mean over the batch normalizing the loss (see
    /// [`class_weights`]). The distillation term is not weighted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub class_balance: f64,
    /// Dropout rates at the start of the run.
    pub dropout: DropoutRates,
    /// The rate of the two Dropouts after Flatten in the last learning-rate cycle (the epochs
    /// after the last restart); `None`: `dropout.head` throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cycle_head_dropout: Option<f64>,
    /// The epoch (0-based) from which `last_cycle_head_dropout` applies; `None`: the start of
    /// the last cycle. Set when a run is extended, so its finished epochs keep their rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dropout_from: Option<usize>,
    pub monitor: Monitor,
    /// When non-zero, the run's result is the mean of the weights of its last this many epochs
    /// (BatchNorm statistics measured anew), if that beats the best single epoch on validation
    /// (see [`crate::averaging`]). Must not exceed the last cycle, whose weights are kept.
    #[serde(default)]
    pub average_last: usize,
    /// Epochs without improvement of `monitor` before stopping; the best weights are restored.
    pub patience: usize,
    pub seed: u64,
    /// Distillation from finished models' soft targets (`host-trainer teach`, see
    /// [`crate::distill`]); `None`: the labels alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<Distill>,
    /// Quantization-aware training: the forward pass rounds weights and activations as the int8
    /// model does (see [`crate::fake_quant`]), for fine-tuning a finished model
    /// (`--init-from`), and the validation figures (and so the best epoch) are the simulated
    /// int8 model's; `None`: float.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant_aware: Option<QuantAware>,
    /// The light normalization of every face of the run (training, validation, test), by name
    /// (`none`, `equalize`, `stretch`, `local`: edge-runtime's `normalize`); `None`: the
    /// published rule. Another rule is for measuring it: `edge-cli`, the firmware, `report` and
    /// `quantize` apply the published one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_rule: Option<String>,
    /// Camera-like degradations of the raw training faces before the light rule (blur, small
    /// faces, sensor noise, JPEG; see [`crate::camera_like`]), in the epochs that distort (as
    /// `distort`); `None`: the faces as FER-2013 has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<Camera>,
    /// A second run that starts from this one's result (a fine-tune, e.g. quantization-aware):
    /// the run itself trains in `<out>/base/`, then this recipe from its weights in `<out>`,
    /// under this recipe's name (see `commands::train`). `None`: one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<Box<Recipe>>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The per-class weights of the class-balanced loss (`Recipe::class_balance` = `beta`) for a
/// training split of `counts` faces per class: `n_c^(−beta)`, scaled so that the largest class
/// weighs 1; a class without faces weighs as the smallest present one (it never occurs in a
/// batch). `None` when `beta` is 0.
pub fn class_weights(counts: &[usize], beta: f64) -> Option<Vec<f32>> {
    if beta == 0.0 {
        return None;
    }
    let smallest = counts.iter().copied().filter(|&n| n > 0).min().unwrap_or(1);
    let largest = counts.iter().copied().max().unwrap_or(1).max(1);
    Some(
        counts
            .iter()
            .map(|&n| ((largest as f64 / n.max(smallest) as f64).powf(beta)) as f32)
            .collect(),
    )
}

impl Recipe {
    /// The light normalization this recipe's faces get ([`Recipe::input_rule`]).
    ///
    /// # Errors
    /// An unknown rule name.
    pub fn normalize(&self) -> Result<Normalize, String> {
        match &self.input_rule {
            None => Ok(INPUT_RULE),
            Some(name) => Normalize::from_name(name).ok_or_else(|| {
                format!(
                    "input_rule is '{name}', expected one of {}",
                    edge_runtime::normalize::ALL.map(|n| n.name()).join(", ")
                )
            }),
        }
    }
}

impl Recipe {
    /// The Dropout rates of epoch `epoch` (0-based).
    pub fn dropout_at(&self, epoch: usize) -> DropoutRates {
        let from = self
            .head_dropout_from
            .unwrap_or_else(|| self.last_cycle_start());
        match self.last_cycle_head_dropout {
            Some(head) if epoch >= from => DropoutRates {
                head,
                ..self.dropout
            },
            _ => self.dropout,
        }
    }

    /// Whether this recipe, trained from scratch, would have done exactly what the first
    /// `history.len()` epochs of `done` did: same batch, seed and base rate, the learning rate
    /// each finished epoch ended with (as `history` recorded it, `batches` steps an epoch), and
    /// the same augmentation and Dropout in each. A checkpoint may then continue under this
    /// recipe instead of its own, and the whole run is the one this recipe describes.
    pub fn replays(&self, done: &Recipe, history: &[EpochStats], batches: usize) -> bool {
        let same_rate = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
        self.batch_size == done.batch_size
            && self.seed == done.seed
            && self.optimizer == done.optimizer
            && self.quant_aware == done.quant_aware
            && self.normalize() == done.normalize()
            && self.epochs >= history.len()
            && history.iter().enumerate().all(|(e, stats)| {
                let last_step = e as f64 + (batches.max(1) - 1) as f64 / batches.max(1) as f64;
                same_rate(self.lr_at(last_step, &history[..e]), stats.learning_rate)
                    && self.augment_at(e) == done.augment_at(e)
                    && self.dropout_at(e) == done.dropout_at(e)
            })
    }

    /// The augmentation of epoch `epoch` (0-based).
    pub fn augment_at(&self, epoch: usize) -> Augment {
        let shifting = self.shift_epochs.is_none_or(|n| epoch < n);
        Augment {
            flip: self.flip,
            max_shift: if shifting { self.max_shift } else { 0 },
            distort: self.distort.filter(|_| shifting),
            camera: self.camera.filter(|_| shifting),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::class_weights;

    #[test]
    fn class_weights_follow_the_counts_to_the_power_asked() {
        assert_eq!(class_weights(&[100, 10, 25], 0.0), None);
        assert_eq!(
            class_weights(&[100, 10, 25], 1.0),
            Some(vec![1.0, 10.0, 4.0])
        );
        assert_eq!(class_weights(&[100, 25, 4], 0.5), Some(vec![1.0, 2.0, 5.0]));
        // A class without faces weighs as the smallest present one.
        assert_eq!(
            class_weights(&[100, 0, 10], 1.0),
            Some(vec![1.0, 10.0, 10.0])
        );
    }

    /// A recipe without the field reads as 0 and is written without it (histories of earlier
    /// runs stay byte for byte the same).
    #[test]
    fn class_balance_is_optional_and_left_out_at_zero() {
        let r = super::Recipe::default_recipe();
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("class_balance"));
        let mut balanced = r.clone();
        balanced.class_balance = 0.5;
        let text = serde_json::to_string(&balanced).unwrap();
        assert!(text.contains("\"class_balance\":0.5"));
        let back: super::Recipe = serde_json::from_str(&text).unwrap();
        assert_eq!(back, balanced);
    }

    use super::schedule::tests::without_restarts;
    use super::*;

    #[test]
    fn a_recipe_file_reads_back_and_adam_stays_implicit() {
        let v2 = Recipe::v2();
        let text = serde_json::to_string(&v2).unwrap();
        assert!(
            !text.contains("optimizer"),
            "Adam recipes serialize as before"
        );
        assert_eq!(serde_json::from_str::<Recipe>(&text).unwrap(), v2);
        let mut sgd = v2.clone();
        sgd.optimizer = Optimizer::Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
        };
        let text = serde_json::to_string(&sgd).unwrap();
        assert!(
            text.contains(r#""optimizer":{"kind":"sgd","momentum":0.9"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Recipe>(&text).unwrap(), sgd);
        // A run may not continue under another optimizer.
        assert!(!sgd.replays(&v2, &[], 10));
    }

    #[test]
    fn shifts_stop_after_their_epochs() {
        let r = Recipe::v1();
        assert_eq!(r.augment_at(0).max_shift, 4);
        assert_eq!(r.augment_at(49).max_shift, 4);
        assert_eq!(
            r.augment_at(50),
            Augment {
                flip: true,
                max_shift: 0,
                distort: None,
                camera: None,
            }
        );
        assert!(!Recipe::paper().augment_at(0).is_active());
        // Camera degradations go with the distortions: off in the last, clean epochs.
        let mut cam = Recipe::v3();
        cam.camera = Some(Camera {
            blur_p: 0.3,
            ..Camera::OFF
        });
        assert!(cam.check().is_ok());
        assert_eq!(cam.augment_at(0).camera, cam.camera);
        assert_eq!(cam.augment_at(110).camera, None);
        cam.camera.as_mut().unwrap().jpeg_quality = (90, 30);
        assert!(cam.check().unwrap_err().contains("camera.jpeg_quality"));
        cam.camera.as_mut().unwrap().jpeg_quality = (30, 90);
        cam.camera.as_mut().unwrap().blur_p = 1.5;
        assert!(cam.check().unwrap_err().contains("camera.blur_p is 1.5"));
    }

    #[test]
    fn head_dropout_is_lighter_from_epoch_41() {
        let r = Recipe::v1();
        assert_eq!(r.last_cycle_start(), 60);
        assert_eq!(r.dropout_at(0), DropoutRates::default());
        assert_eq!(r.dropout_at(39), DropoutRates::default());
        let late = r.dropout_at(40);
        assert_eq!((late.block, late.head), (0.25, 0.1));
        assert_eq!(r.dropout_at(79), late);
        // Without a start of its own, the lighter rate is the last cycle's; a run cut before
        // the last restart has one cycle: the whole run is the last.
        let mut r = r;
        r.head_dropout_from = None;
        assert_eq!(r.dropout_at(59), DropoutRates::default());
        assert_eq!(r.dropout_at(60), late);
        r.epochs = 30;
        assert_eq!(r.last_cycle_start(), 20);
        r.epochs = 15;
        assert_eq!(r.dropout_at(0), late);
        assert_eq!(Recipe::paper().dropout_at(30), DropoutRates::default());
    }

    #[test]
    fn an_extended_run_keeps_the_dropout_its_epochs_had() {
        for old_epochs in [60, 30] {
            // A recipe whose lighter head Dropout is the last cycle's, as checkpoints made before
            // `head_dropout_from` recorded it.
            let mut r = Recipe::v1();
            r.head_dropout_from = None;
            r.epochs = old_epochs;
            let done: Vec<DropoutRates> = (0..old_epochs).map(|e| r.dropout_at(e)).collect();
            r.epochs = old_epochs + 20;
            r.extend_from(old_epochs);
            for (e, rates) in done.iter().enumerate() {
                assert_eq!(
                    r.dropout_at(e),
                    *rates,
                    "epoch {e} of a {old_epochs}-epoch run"
                );
            }
            // The new cycle keeps the lighter rate.
            assert_eq!(r.dropout_at(old_epochs).head, 0.1);
            assert_eq!(r.dropout_at(old_epochs + 19).head, 0.1);
        }
    }

    /// The history a recipe records when trained for `epochs` epochs of `batches` steps.
    fn history_of(r: &Recipe, epochs: usize, batches: usize) -> Vec<EpochStats> {
        (0..epochs)
            .map(|e| EpochStats {
                epoch: e + 1,
                train_loss: 1.0,
                train_accuracy: 0.5,
                val_loss: 1.0,
                val_accuracy: 0.5,
                val_macro_f1: None,
                learning_rate: r.lr_at(e as f64 + (batches - 1) as f64 / batches as f64, &[]),
                seconds: 1.0,
            })
            .collect()
    }

    #[test]
    fn v1_replays_the_run_it_continues() {
        let batches = 566;
        // The published run: 20 epochs of one cosine, extended once to 40; its checkpoint
        // recorded the recipe of that time (head Dropout 0.25, shifts throughout).
        let mut old = without_restarts(Recipe::v1());
        old.shift_epochs = None;
        old.last_cycle_head_dropout = None;
        old.head_dropout_from = None;
        old.epochs = 20;
        let mut history = history_of(&old, 20, batches);
        old.epochs = 40;
        old.extend_from(20);
        history.extend(history_of(&old, 40, batches).into_iter().skip(20));
        let default = Recipe::v1(); // the default of that time
        assert!(default.replays(&old, &history, batches));
        assert!(default.replays(&old, &history[..7], batches));
        // ... and the 60-epoch run that continued it under the previous default (three cycles,
        // the lighter head Dropout in the last), whose checkpoint the fourth cycle extends.
        let mut sixty = default.clone();
        sixty.epochs = 60;
        sixty.schedule = Schedule::Cosine {
            warmup_epochs: 1.0,
            final_fraction: 0.02,
            restarts: vec![20, 40],
        };
        sixty.head_dropout_from = None;
        let history60 = history_of(&sixty, 60, batches);
        assert!(default.replays(&sixty, &history60, batches));
        // Anything that would have trained those epochs differently does not.
        let mut other = default.clone();
        other.dropout.head = 0.1;
        assert!(!other.replays(&old, &history, batches));
        let mut other = default.clone();
        other.shift_epochs = Some(30);
        assert!(!other.replays(&old, &history, batches));
        let mut other = default.clone();
        other.schedule = without_restarts(default.clone()).schedule;
        assert!(!other.replays(&old, &history, batches));
        let mut other = default.clone();
        other.seed = 7;
        assert!(!other.replays(&old, &history, batches));
        let mut other = default.clone();
        other.epochs = 30;
        assert!(
            !other.replays(&old, &history, batches),
            "the last cycle moved"
        );
        assert!(
            !default.replays(&old, &history, batches + 1),
            "other step count"
        );
    }

    #[test]
    fn older_checkpoints_read_without_the_new_fields() {
        // The first published run's state (its history file) predates `distort` and
        // `label_smoothing`.
        let path =
            fer_test_support::models_dir().join("candidates/v1-default/fer_cnn.history.json");
        let text = std::fs::read_to_string(path).expect("published run's history");
        let state: serde_json::Value = serde_json::from_str(&text).expect("json");
        let recipe: Recipe = serde_json::from_value(state["recipe"].clone()).expect("recipe");
        assert_eq!(recipe.distort, None);
        assert_eq!(recipe.label_smoothing, 0.0);
        assert_eq!(recipe.name, "default");
        // ... and the new preset survives its own round trip.
        let v2 = Recipe::v2();
        let back: Recipe =
            serde_json::from_str(&serde_json::to_string(&v2).expect("to json")).expect("back");
        assert_eq!(back, v2);
        assert!(v2.augment_at(109).distort.is_some());
        assert_eq!(v2.augment_at(110).distort, None);
        assert!(v2.augment_at(110).flip);
    }
}
