//! The training loop: epochs of Adam steps on augmented batches, validation after each epoch,
//! the best weights, early stopping, and checkpoints (see [`crate::checkpoint`]) that a Ctrl-C
//! or a crash never loses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use edge_runtime::format::QParams;
use edge_runtime::labels::CLASS_COUNT;
use edge_runtime::normalize::Normalize;

use crate::batches::{EpochBatches, RawFaces};
use crate::checkpoint::{Checkpoint, TrainState};
use crate::distill::{batch_targets, soft_loss, SoftTargets};
use crate::evaluate::{evaluate, evaluate_quant_sim};
use crate::history::EpochStats;
use crate::model::Net;
use crate::recipe::Distill;
use crate::recipe::Recipe;
use fer_dataset::data::Sample;
use fer_dataset::rng::Rng;

/// How a call to [`train`] ended.
pub enum Outcome {
    /// All epochs ran, or early stopping ended the run; the model holds the best weights.
    Finished(Box<Net>, TrainState),
    /// Ctrl-C: the checkpoint is saved; `--resume` continues.
    Interrupted(TrainState),
}

/// How a run starts and reports.
pub struct RunOptions {
    /// Save a mid-epoch checkpoint every this many batches (besides the one after every epoch).
    pub checkpoint_every: usize,
    /// Continue the run in the checkpoint, when there is one.
    pub resume: bool,
    /// A new run starts from these weights instead of a fresh initialization (fine-tuning).
    pub init_from: Option<std::path::PathBuf>,
    pub progress: bool,
    /// Set by the Ctrl-C handler.
    pub stop: Arc<AtomicBool>,
    /// The teachers' soft targets of the training samples, in their order, when the recipe
    /// distills (see [`crate::distill`]).
    pub soft_targets: Option<Arc<SoftTargets>>,
    /// The training samples' raw faces (no light rule), in their order, and the rule, when the
    /// recipe degrades faces like a camera (`camera`): the degradations act before the rule.
    pub raw_train: Option<Arc<(Vec<Sample>, Normalize)>>,
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
    let (mut model, mut optim, mut state) = ckpt.open(
        recipe,
        train.len(),
        (opts.resume, opts.init_from.as_deref()),
        &ad,
    )?;
    let recipe = state.recipe.clone();
    let soft = match (recipe.distill, &opts.soft_targets) {
        (None, _) => None,
        (Some(_), Some(targets)) if targets.rows.len() != train.len() => bail!(
            "{} soft targets for {} training images",
            targets.rows.len(),
            train.len()
        ),
        (Some(d), Some(targets)) if (d.temperature - targets.temperature).abs() > 1e-9 => bail!(
            "recipe '{}' (the checkpoint's, on --resume) distills at temperature {}, the teachers' \
             targets are at temperature {}: run `host-trainer teach` again with --temperature {}",
            recipe.name,
            d.temperature,
            targets.temperature,
            d.temperature
        ),
        (Some(d), Some(targets)) => Some((d, targets.rows.as_slice())),
        (Some(_), None) => bail!(
            "recipe '{}' distills from teachers, but no soft targets were given (`host-trainer \
             teach` writes them)",
            recipe.name
        ),
    };
    // The class-balanced loss's weights, from the training split's class counts.
    let mut counts = [0usize; CLASS_COUNT];
    for s in train {
        counts[s.label.index()] += 1;
    }
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((recipe.label_smoothing > 0.0).then_some(recipe.label_smoothing as f32))
        .with_weights(crate::recipe::class_weights(&counts, recipe.class_balance))
        .init(&ad);
    // Quantization-aware: the grids the last epoch ended with, which are those of the next
    // epoch's starting weights.
    let mut carried_grids = None;
    while !state.finished && state.epoch < recipe.epochs {
        let started = Instant::now();
        // Quantization-aware: the activation grids of this epoch's starting weights (measured
        // anew when the run starts or resumes).
        let quant_sim = recipe.quant_aware.map(|q| {
            carried_grids
                .take()
                .unwrap_or_else(|| crate::fake_quant::calibrate(&model.valid(), train, q, device))
        });
        let epoch = Epoch {
            recipe: &recipe,
            train,
            ckpt,
            opts,
            loss_fn: &loss_fn,
            soft,
            quant_sim,
            device: &ad,
            started,
        };
        let interrupted;
        (model, optim, interrupted) = epoch.run(model, optim, &mut state)?;
        if interrupted {
            return Ok(Outcome::Interrupted(state));
        }
        let inference = model.valid();
        let figures = match recipe.quant_aware {
            // Quantization-aware: the simulated int8 model is what ships, so it is what is
            // validated (grids from the epoch's final weights).
            Some(q) => {
                let grids = crate::fake_quant::calibrate(&inference, train, q, device);
                let figures =
                    evaluate_quant_sim(&inference, validation, device, opts.progress, &grids);
                carried_grids = Some(grids);
                figures
            }
            None => evaluate(&inference, validation, device, opts.progress),
        };
        let labels: Vec<usize> = validation.iter().map(|s| s.label.index()).collect();
        let stats = epoch.stats(&state, figures, &labels);
        end_epoch(&recipe, ckpt, &model, &mut state, stats)?;
        ckpt.save(&model, &optim, &mut state)?;
        if !state.finished && opts.stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Interrupted(state));
        }
    }
    let best = ckpt.load_best(device, &recipe)?;
    Ok(Outcome::Finished(Box::new(best), state))
}

/// One epoch of training steps, from `state.batch` on.
struct Epoch<'a> {
    recipe: &'a Recipe,
    train: &'a [Sample],
    ckpt: &'a Checkpoint,
    opts: &'a RunOptions,
    loss_fn: &'a CrossEntropyLoss,
    /// Distillation: its settings and the soft target of every training sample.
    soft: Option<(Distill, &'a [[f32; CLASS_COUNT]])>,
    /// Quantization-aware training: the activation grids the forward pass rounds to.
    quant_sim: Option<Vec<QParams>>,
    device: &'a Device,
    started: Instant,
}

impl Epoch<'_> {
    /// Runs the remaining steps of epoch `state.epoch`, keeping the running loss and accuracy in
    /// `state.partial`. Returns the model and optimizer, and whether Ctrl-C stopped the epoch
    /// (then a checkpoint at that batch is saved).
    fn run(
        &self,
        model: Net,
        optim: ModuleOptimizer,
        state: &mut TrainState,
    ) -> Result<(Net, ModuleOptimizer, bool)> {
        let (recipe, opts) = (self.recipe, self.opts);
        let epoch = state.epoch;
        let batches = self.train.len().div_ceil(recipe.batch_size);
        let model = model.with_dropout(recipe.dropout_at(epoch));
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        Rng::derive(recipe.seed, &[1, epoch as u64]).shuffle(&mut order);
        let bar = crate::progress::bar(
            opts.progress,
            batches as u64,
            &format!("epoch {}/{}", epoch + 1, recipe.epochs),
        );
        bar.set_position(state.batch as u64);
        let (mut loss_sum, mut correct, mut seen) = state.partial;
        let epoch_batches = EpochBatches {
            samples: self.train,
            order: &order,
            batch_size: recipe.batch_size,
            augment: recipe.augment_at(epoch),
            seed: recipe.seed,
            epoch,
            raw: opts.raw_train.as_deref().map(|(samples, rule)| RawFaces {
                samples,
                rule: *rule,
            }),
        };
        let stepped = epoch_batches.prefetched(state.batch..batches, |ready| -> Result<_> {
            // The model and optimizer move in and out: the optimizer updates weights that
            // nothing else holds.
            let (mut model, mut optim) = (model, optim);
            for (b, host) in ready {
                let n = host.labels.len();
                let soft = self
                    .soft
                    .map(|(d, all)| (d, batch_targets(all, &host.samples, self.device)));
                let (images, targets) = host.to_device(self.device);
                let logits = match &self.quant_sim {
                    Some(grids) => model.forward_quant_sim(images, grids),
                    None => model.forward(images),
                };
                let hard = self.loss_fn.forward(logits.clone(), targets.clone());
                let loss = match soft {
                    None => hard,
                    Some((d, teacher)) => {
                        hard.mul_scalar(1.0 - d.weight) + soft_loss(logits.clone(), teacher, d)
                    }
                };
                let pred = logits.argmax(1).flatten::<1>(0, 1);
                let hits: i64 = pred.equal(targets).int().sum().into_scalar();
                let loss_value: f64 = loss.clone().into_scalar();
                if !loss_value.is_finite() {
                    // The weights are not updated with this step, and nothing after the last
                    // checkpoint is saved: --resume continues from there.
                    bail!(
                        "the training loss became {loss_value} at epoch {}, batch {}: stopping \
                         before the weights are damaged; the last checkpoint in {} (if one was \
                         saved) is kept",
                        epoch + 1,
                        b + 1,
                        self.ckpt.dir.display()
                    );
                }
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                let lr = recipe.lr_at(epoch as f64 + b as f64 / batches as f64, &state.history);
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

                state.batch = b + 1;
                state.partial = (loss_sum, correct, seen);
                let interrupted = opts.stop.load(Ordering::SeqCst);
                let periodic = opts.checkpoint_every > 0 && (b + 1) % opts.checkpoint_every == 0;
                if (interrupted || periodic) && b + 1 < batches {
                    state.train_seconds += self.started.elapsed().as_secs_f64();
                    self.ckpt.save(&model, &optim, state)?;
                    state.train_seconds -= self.started.elapsed().as_secs_f64();
                    if interrupted {
                        return Ok((model, optim, true));
                    }
                }
            }
            Ok((model, optim, false))
        })?;
        if stepped.2 {
            bar.abandon_with_message("interrupted");
        } else {
            bar.finish_and_clear();
        }
        Ok(stepped)
    }

    /// The epoch's figures, from its running sums and the validation `(loss, accuracy, scores)`
    /// of the images whose classes are `labels`.
    fn stats(
        &self,
        state: &TrainState,
        validation: (f64, f64, Vec<f32>),
        labels: &[usize],
    ) -> EpochStats {
        let predicted = fer_dataset::metrics::argmax_rows(&validation.2);
        let report =
            fer_dataset::metrics::Report::from_pairs(labels.iter().copied().zip(predicted));
        let (loss_sum, correct, seen) = state.partial;
        let epoch = state.epoch;
        let batches = self.train.len().div_ceil(self.recipe.batch_size);
        EpochStats {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss: validation.0,
            val_accuracy: validation.1,
            val_macro_f1: Some(report.macro_avg.f1),
            // The rate of the epoch's last step.
            learning_rate: self.recipe.lr_at(
                epoch as f64 + (batches - 1) as f64 / batches as f64,
                &state.history,
            ),
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// Records a finished epoch in `state`: its figures, the best weights when it improved on them,
/// early stopping, and the epoch's weights when the recipe averages the last epochs.
fn end_epoch(
    recipe: &Recipe,
    ckpt: &Checkpoint,
    model: &Net,
    state: &mut TrainState,
    stats: EpochStats,
) -> Result<()> {
    say!(
        "epoch {:>2}/{}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% macro-F1 {:.3} | \
         {:.0} s",
        stats.epoch,
        recipe.epochs,
        stats.train_loss,
        100.0 * stats.train_accuracy,
        stats.val_loss,
        100.0 * stats.val_accuracy,
        stats.val_macro_f1.unwrap_or(f64::NAN),
        stats.seconds
    );
    let epoch = state.epoch;
    let value = recipe.monitor.value(stats.val_loss, stats.val_accuracy);
    let improved = recipe.monitor.improves(value, state.best_value);
    state.train_seconds += stats.seconds;
    state.history.push(stats);
    state.epoch += 1;
    state.batch = 0;
    state.partial = (0.0, 0, 0);
    if improved {
        state.best_value = Some(value);
        state.best_epoch = Some(state.epoch);
        ckpt.save_best(model)?;
    }
    let since_best = state.epoch - state.best_epoch.unwrap_or(0);
    if since_best >= recipe.patience && state.epoch < recipe.epochs {
        say!(
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
        // The weights of the last `average_last` epochs of the last cycle, for weight averaging.
        ckpt.save_epoch_weights(model, state.epoch, recipe.average_last)?;
    }
    Ok(())
}
