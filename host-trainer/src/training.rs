//! The training loop: batches, Adam steps, validation, early stopping, checkpoints and resume.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::batches::{make_batch, EpochBatches};
use crate::data::Sample;
use crate::fsutil::{read_json, write_json};
use crate::model::Net;
use crate::recipe::Recipe;
use crate::rng::Rng;

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

/// Everything besides the weights that a resumed run needs. Saved as `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub recipe: Recipe,
    /// Epochs fully done (0-based index of the epoch in progress).
    pub epoch: usize,
    /// Batches of that epoch already done (non-zero only after an interruption).
    pub batch: usize,
    /// Running sums of the epoch in progress: loss·n, correct, n.
    pub partial: (f64, usize, usize),
    pub history: Vec<EpochStats>,
    pub best_epoch: Option<usize>,
    pub best_value: Option<f64>,
    pub stopped_early: bool,
    pub finished: bool,
    pub train_seconds: f64,
    /// Number of training images, to refuse resuming on different data.
    pub train_len: usize,
    /// The weight average of the last epochs, when the recipe asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged: Option<Averaged>,
}

impl TrainState {
    /// The weight average, when it is the run's result.
    pub fn kept_average(&self) -> Option<&Averaged> {
        self.averaged.as_ref().filter(|a| a.chosen)
    }
}

/// The weight average of a run's last epochs, measured on the validation split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Averaged {
    /// First and last averaged epoch (1-based, inclusive).
    pub epochs: (usize, usize),
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Whether it beat the best single epoch (by the recipe's monitor) and is the run's result.
    pub chosen: bool,
}

/// Where a run keeps its checkpoint.
pub struct Checkpoint {
    pub dir: PathBuf,
}

impl Checkpoint {
    pub fn new(dir: &Path) -> Self {
        Checkpoint {
            dir: dir.to_path_buf(),
        }
    }
    fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    fn model(&self) -> PathBuf {
        self.dir.join("model.bpk")
    }
    fn optim(&self) -> PathBuf {
        self.dir.join("optimizer.bpk")
    }
    /// The best weights so far (by the recipe's monitor).
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.bpk")
    }
    /// The weight average of the last epochs (see [`average_last_epochs`]).
    pub fn average(&self) -> PathBuf {
        self.dir.join("average.bpk")
    }
    /// The weights at the end of epoch `epoch` (1-based), kept for the last epochs of the last
    /// cycle (as many as the recipe averages).
    pub fn epoch_weights(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:03}.bpk"))
    }
    pub fn exists(&self) -> bool {
        self.state().is_file()
    }

    /// Saves weights, optimizer state and training state. Each file is replaced atomically; the
    /// state file goes last, so a crash in between leaves the previous consistent checkpoint
    /// description pointing at weights at most one save newer.
    fn save(&self, model: &Net, optim: &ModuleOptimizer, state: &TrainState) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create checkpoint folder {}", self.dir.display()))?;
        model
            .clone()
            .save_file(self.model())
            .with_context(|| format!("cannot write {}", self.model().display()))?;
        optim
            .to_record()
            .save(self.optim())
            .with_context(|| format!("cannot write {}", self.optim().display()))?;
        write_json(&self.state(), state)
    }

    fn load(&self, device: &Device, recipe: &Recipe) -> Result<(Net, ModuleOptimizer, TrainState)> {
        let state: TrainState = read_json(&self.state())?;
        let model = Net::new(device, recipe.dropout)
            .try_load_file(self.model())
            .with_context(|| {
                format!("cannot load checkpoint weights {}", self.model().display())
            })?;
        let record = OptimizerRecord::load(self.optim())
            .with_context(|| format!("cannot load optimizer state {}", self.optim().display()))?;
        let optim = AdamConfig::new().init().load_record(record);
        Ok((model, optim, state))
    }
}

/// How a call to [`train`] ended.
pub enum Outcome {
    /// All epochs ran, or early stopping ended the run; the model holds the best weights.
    Finished(Box<Net>, TrainState),
    /// Ctrl-C: the checkpoint is saved; `--resume` continues.
    Interrupted(TrainState),
}

/// Options that do not change the result.
pub struct RunOptions {
    /// Save a mid-epoch checkpoint every this many batches (besides the one after every epoch).
    pub checkpoint_every: usize,
    pub resume: bool,
    pub progress: bool,
    /// Set by the Ctrl-C handler.
    pub stop: Arc<AtomicBool>,
}

/// Trains `recipe` on `train`, validating on `validation` after each epoch, checkpointing into
/// `ckpt`. With `opts.resume` it continues from the checkpoint.
///
/// # Errors
/// Unwritable checkpoint, or a checkpoint that does not match the recipe or data.
pub fn train(
    recipe: &Recipe,
    train: &[Sample],
    validation: &[Sample],
    device: &Device,
    ckpt: &Checkpoint,
    opts: &RunOptions,
) -> Result<Outcome> {
    if train.is_empty() || validation.is_empty() {
        bail!("the training and validation splits must not be empty");
    }
    let ad = device.clone().autodiff();
    device.seed(recipe.seed);
    let (mut model, mut optim, mut state) = if opts.resume && ckpt.exists() {
        let (m, o, s) = ckpt.load(&ad, recipe)?;
        if s.train_len != train.len() || s.recipe.seed != recipe.seed {
            bail!(
                "checkpoint in {} was made with {} training images and seed {}, this run has {} and \
                 seed {}: point --out elsewhere or drop --resume",
                ckpt.dir.display(),
                s.train_len,
                s.recipe.seed,
                train.len(),
                recipe.seed
            );
        }
        if !s.finished && s.epoch > recipe.epochs {
            bail!(
                "the checkpoint in {} has trained {} epochs, more than --epochs {}: pass \
                 --epochs {} or more to continue it",
                ckpt.dir.display(),
                s.epoch,
                recipe.epochs,
                s.epoch
            );
        }
        if s.finished && s.epoch >= recipe.epochs {
            eprintln!(
                "{} holds a finished run of {} epochs",
                ckpt.dir.display(),
                s.epoch
            );
        } else {
            eprintln!(
                "resuming from {}: epoch {} of {}, batch {}",
                ckpt.dir.display(),
                s.epoch + 1,
                recipe.epochs,
                s.batch
            );
        }
        (m, o, s)
    } else {
        if opts.resume {
            eprintln!(
                "no checkpoint in {}: starting a new run",
                ckpt.dir.display()
            );
        }
        let state = TrainState {
            recipe: recipe.clone(),
            epoch: 0,
            batch: 0,
            partial: (0.0, 0, 0),
            history: Vec::new(),
            best_epoch: None,
            best_value: None,
            stopped_early: false,
            finished: false,
            train_seconds: 0.0,
            train_len: train.len(),
            averaged: None,
        };
        (
            Net::new(&ad, recipe.dropout),
            AdamConfig::new().init(),
            state,
        )
    };
    let batches = train.len().div_ceil(recipe.batch_size);
    // A resumed run keeps its recipe except the epoch count and the patience: a larger --epochs
    // extends a run that ran out of epochs (not one that early stopping ended). The one
    // exception: a recipe that would have trained the finished epochs exactly as they were
    // trained (a preset that grew a further cycle) takes over the run.
    if recipe.epochs > state.epoch && !state.stopped_early {
        state.finished = false;
    }
    let adopt = recipe.replays(&state.recipe, &state.history, batches);
    if adopt && state.epoch > 0 {
        if state.recipe != *recipe {
            eprintln!(
                "continuing under the current `{}` recipe, which replays the {} finished epochs \
                 exactly (the checkpoint's was {})",
                recipe.name,
                state.epoch,
                serde_json::to_string(&state.recipe)?
            );
        }
        state.recipe = recipe.clone();
    } else if recipe.epochs > state.recipe.epochs && state.epoch >= state.recipe.epochs {
        // Extending a run that used all its epochs: the finished epochs keep their rates.
        state.recipe.epochs = recipe.epochs;
        let done = state.epoch;
        state.recipe.extend_from(done);
    }
    state.recipe.epochs = recipe.epochs;
    state.recipe.patience = recipe.patience;
    if state.epoch > 0 && state.recipe != *recipe {
        eprintln!(
            "the run continues under its checkpoint's recipe: {}",
            serde_json::to_string(&state.recipe)?
        );
    }
    let recipe = state.recipe.clone();
    if state.finished {
        let best = load_best(ckpt, device, &recipe)?;
        return Ok(Outcome::Finished(Box::new(best), state));
    }

    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((recipe.label_smoothing > 0.0).then_some(recipe.label_smoothing as f32))
        .init(&ad);
    while state.epoch < recipe.epochs {
        let epoch = state.epoch;
        let started = Instant::now();
        model = model.with_dropout(recipe.dropout_at(epoch));
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::derive(recipe.seed, &[1, epoch as u64]).shuffle(&mut order);
        let bar = progress_bar(
            opts.progress,
            batches as u64,
            &format!("epoch {}/{}", epoch + 1, recipe.epochs),
        );
        bar.set_position(state.batch as u64);
        let (mut loss_sum, mut correct, mut seen) = state.partial;
        let mut lr = recipe.lr_at(epoch as f64);
        let epoch_batches = EpochBatches {
            samples: train,
            order: &order,
            batch_size: recipe.batch_size,
            augment: recipe.augment_at(epoch),
            seed: recipe.seed,
            epoch,
        };
        let stepped = epoch_batches.prefetched(state.batch..batches, |ready| -> Result<_> {
            // The model and optimizer move in and out: the optimizer updates weights that
            // nothing else holds.
            let (mut model, mut optim) = (model, optim);
            for (b, host) in ready {
                let n = host.labels.len();
                let (images, targets) = host.to_device(&ad);
                let logits = model.forward(images);
                let loss = loss_fn.forward(logits.clone(), targets.clone());
                let pred = logits.argmax(1).flatten::<1>(0, 1);
                let hits: i64 = pred.equal(targets).int().sum().into_scalar();
                let loss_value: f64 = loss.clone().into_scalar();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                lr = recipe.lr_at(epoch as f64 + b as f64 / batches as f64);
                model = optim.step(lr, model, grads);

                loss_sum += loss_value * n as f64;
                correct += hits as usize;
                seen += n;
                bar.set_message(format!(
                    "loss {:.4} acc {:.2}% lr {:.2e}",
                    loss_sum / seen as f64,
                    100.0 * correct as f64 / seen as f64,
                    lr
                ));
                bar.inc(1);

                let interrupted = opts.stop.load(Ordering::SeqCst);
                let periodic = opts.checkpoint_every > 0 && (b + 1) % opts.checkpoint_every == 0;
                if (interrupted || periodic) && b + 1 < batches {
                    state.batch = b + 1;
                    state.partial = (loss_sum, correct, seen);
                    state.train_seconds += started.elapsed().as_secs_f64();
                    ckpt.save(&model, &optim, &state)?;
                    state.train_seconds -= started.elapsed().as_secs_f64();
                    if interrupted {
                        return Ok((model, optim, true));
                    }
                }
            }
            Ok((model, optim, false))
        })?;
        let interrupted;
        (model, optim, interrupted) = stepped;
        if interrupted {
            bar.abandon_with_message("interrupted");
            return Ok(Outcome::Interrupted(state));
        }
        bar.finish_and_clear();

        let (val_loss, val_accuracy, _) =
            evaluate(&model.valid(), validation, device, opts.progress);
        let seconds = started.elapsed().as_secs_f64();
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy,
            learning_rate: lr,
            seconds,
        };
        eprintln!(
            "epoch {:>2}/{}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% | {:.0} s",
            stats.epoch,
            recipe.epochs,
            stats.train_loss,
            100.0 * stats.train_accuracy,
            val_loss,
            100.0 * val_accuracy,
            seconds
        );
        let value = recipe.monitor.value(val_loss, val_accuracy);
        let improved = recipe.monitor.improves(value, state.best_value);
        state.history.push(stats);
        state.epoch += 1;
        state.batch = 0;
        state.partial = (0.0, 0, 0);
        state.train_seconds += seconds;
        if improved {
            std::fs::create_dir_all(&ckpt.dir).with_context(|| {
                format!("cannot create checkpoint folder {}", ckpt.dir.display())
            })?;
            state.best_value = Some(value);
            state.best_epoch = Some(epoch + 1);
            model
                .clone()
                .save_file(ckpt.best())
                .with_context(|| format!("cannot write {}", ckpt.best().display()))?;
        }
        let since_best = state.epoch - state.best_epoch.unwrap_or(0);
        if since_best >= recipe.patience && state.epoch < recipe.epochs {
            eprintln!(
                "early stopping: no better {:?} for {} epochs; restoring epoch {}",
                recipe.monitor,
                since_best,
                state.best_epoch.unwrap_or(0)
            );
            state.stopped_early = true;
            state.finished = true;
        }
        if state.epoch >= recipe.epochs {
            state.finished = true;
        }
        if recipe.average_last > 0 && epoch >= recipe.last_cycle_start() {
            // The weights of the last `average_last` epochs of the last cycle, for weight
            // averaging; older ones are removed as the window moves on.
            let path = ckpt.epoch_weights(epoch + 1);
            model
                .clone()
                .save_file(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            for old in 1..(epoch + 2).saturating_sub(recipe.average_last) {
                let old = ckpt.epoch_weights(old);
                if old.is_file() {
                    std::fs::remove_file(&old)
                        .with_context(|| format!("cannot remove {}", old.display()))?;
                }
            }
        }
        ckpt.save(&model, &optim, &state)?;
        if state.finished {
            break;
        }
        if opts.stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Interrupted(state));
        }
    }
    let best = load_best(ckpt, device, &recipe)?;
    Ok(Outcome::Finished(Box::new(best), state))
}

/// Averages the weights of the last `recipe.average_last` epochs of a finished run (kept in
/// `ckpt`), measures BatchNorm's statistics on `train` and the result on `validation`, and
/// records that in `state.averaged`. Returns the average when it beats the best single epoch by
/// the recipe's monitor.
///
/// # Errors
/// Missing or unreadable epoch weights (the checkpoint keeps those of the last cycle only).
pub fn average_last_epochs(
    ckpt: &Checkpoint,
    state: &mut TrainState,
    train: &[Sample],
    validation: &[Sample],
    device: &Device,
    progress: bool,
) -> Result<Option<Net>> {
    let recipe = &state.recipe;
    let last = state.epoch;
    let n = averaging_window(recipe, last);
    if n < recipe.average_last {
        eprintln!(
            "the recipe averages the last {} epochs, but the run's last cycle has {} (epochs {} to \
             {last}): {}",
            recipe.average_last,
            last.saturating_sub(recipe.last_cycle_start()),
            recipe.last_cycle_start() + 1,
            if n >= 2 {
                format!("averaging the last {n}")
            } else {
                "the best epoch is the result".to_string()
            }
        );
    }
    if n < 2 {
        return Ok(None);
    }
    let first = last - n + 1;
    if let Some(done) = state.averaged.clone().filter(|a| a.epochs == (first, last)) {
        if ckpt.average().is_file() {
            // Made before (a finished run resumed): the epochs' weights may be gone by now.
            let mean = Net::new(device, recipe.dropout)
                .try_load_file(ckpt.average())
                .with_context(|| format!("cannot load {}", ckpt.average().display()))?;
            return Ok(done.chosen.then_some(mean));
        }
    }
    let paths: Vec<PathBuf> = (first..=last).map(|e| ckpt.epoch_weights(e)).collect();
    let mean = crate::averaging::mean_weights(&paths, device)?;
    let mean = crate::averaging::recompute_batch_norm(mean, train, device);
    let (val_loss, val_accuracy, _) = evaluate(&mean, validation, device, progress);
    let value = recipe.monitor.value(val_loss, val_accuracy);
    let chosen = recipe.monitor.improves(value, state.best_value);
    eprintln!(
        "mean of the weights of epochs {first}-{last}: val loss {val_loss:.4} acc {:.2}% \
         ({} the best epoch, {:?} = {:?})",
        100.0 * val_accuracy,
        if chosen {
            "kept: beats"
        } else {
            "dropped: does not beat"
        },
        recipe.monitor,
        state.best_value.unwrap_or(f64::NAN)
    );
    state.averaged = Some(Averaged {
        epochs: (first, last),
        val_loss,
        val_accuracy,
        chosen,
    });
    mean.clone()
        .save_file(ckpt.average())
        .with_context(|| format!("cannot write {}", ckpt.average().display()))?;
    write_json(&ckpt.state(), state)?;
    Ok(chosen.then_some(mean))
}

/// How many of the last epochs of a run that ended after `last` epochs the weight average takes:
/// the recipe's `average_last`, but no more than the last cycle holds (only its epochs' weights
/// are kept, and an average across a warm restart mixes unrelated minima).
pub fn averaging_window(recipe: &Recipe, last: usize) -> usize {
    recipe
        .average_last
        .min(last.saturating_sub(recipe.last_cycle_start()))
}

fn load_best(ckpt: &Checkpoint, device: &Device, recipe: &Recipe) -> Result<Net> {
    Net::new(device, recipe.dropout)
        .try_load_file(ckpt.best())
        .with_context(|| format!("cannot load best weights {}", ckpt.best().display()))
}

fn progress_bar(show: bool, len: u64, prefix: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// Batch size for evaluation (no gradients, so larger batches are cheap).
pub const EVAL_BATCH: usize = 200;

/// Mean cross-entropy, accuracy, and the softmax scores of every sample (row-major `[n, 7]`).
pub fn evaluate(
    model: &Net,
    samples: &[Sample],
    device: &Device,
    progress: bool,
) -> (f64, f64, Vec<f32>) {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let bar = progress_bar(
        progress,
        samples.len().div_ceil(EVAL_BATCH) as u64,
        "evaluate",
    );
    let (mut loss_sum, mut correct) = (0.0, 0usize);
    let mut scores = Vec::with_capacity(samples.len() * edge_runtime::labels::CLASS_COUNT);
    let all: Vec<usize> = (0..samples.len()).collect();
    for idx in all.chunks(EVAL_BATCH) {
        let (images, targets) = make_batch(samples, idx, None, device);
        let logits = model.forward(images);
        let loss: f64 = loss_fn
            .forward(logits.clone(), targets.clone())
            .into_scalar();
        let hits: i64 = logits
            .clone()
            .argmax(1)
            .flatten::<1>(0, 1)
            .equal(targets)
            .int()
            .sum()
            .into_scalar();
        loss_sum += loss * idx.len() as f64;
        correct += hits as usize;
        let probs = burn::tensor::activation::softmax(logits, 1);
        scores.extend(probs.into_data().try_into_vec::<f32>().unwrap_or_default());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = samples.len().max(1) as f64;
    (loss_sum / n, correct as f64 / n, scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_averaging_window_fits_the_epochs_that_were_kept() {
        // The default keeps the weights of its last cycle (epochs 61-80) and averages 10.
        let mut r = Recipe::default_recipe();
        assert_eq!(averaging_window(&r, 80), 10);
        // Stopped early at 75: still 15 epochs of the last cycle.
        assert_eq!(averaging_window(&r, 75), 10);
        assert_eq!(averaging_window(&r, 65), 5);
        // Stopped early before the last cycle began: no epoch weights were kept.
        assert_eq!(averaging_window(&r, 2), 0);
        assert_eq!(averaging_window(&r, 60), 0);
        // --epochs 25: the last cycle is epochs 21-25; --epochs 5: one cycle, 5 epochs.
        r.epochs = 25;
        assert_eq!(averaging_window(&r, 25), 5);
        r.epochs = 5;
        assert_eq!(averaging_window(&r, 5), 5);
        r.epochs = 45;
        assert_eq!(averaging_window(&r, 45), 5);
        assert_eq!(averaging_window(&Recipe::paper(), 20), 0);
    }

    #[test]
    fn a_run_stopped_before_its_last_cycle_keeps_its_best_epoch() {
        // Early stopping at epoch 2 of the default (whose last cycle starts at 61) used to fail
        // after training with "epochs 61 to 2" and write no model.
        let dir = tempfile::tempdir().expect("temp dir");
        let ckpt = Checkpoint::new(dir.path());
        let mut state = TrainState {
            recipe: Recipe::default_recipe(),
            epoch: 2,
            batch: 0,
            partial: (0.0, 0, 0),
            history: Vec::new(),
            best_epoch: Some(2),
            best_value: Some(0.5),
            stopped_early: true,
            finished: true,
            train_seconds: 1.0,
            train_len: 10,
            averaged: None,
        };
        let device = crate::device();
        let result = average_last_epochs(&ckpt, &mut state, &[], &[], &device, false);
        assert!(matches!(result, Ok(None)), "no average, no error");
        assert!(state.averaged.is_none());
    }
}
