//! Weight averaging (stochastic weight averaging, Izmailov et al. 2018): the mean of the weights
//! the last epochs of a run ended with, with BatchNorm's running statistics measured anew on the
//! training images, since the mean of the epochs' statistics is not the statistics of the mean.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, RunningState};
use burn::tensor::module::batch_norm_train;
use burn::tensor::{Device, Tensor};

use crate::batches::make_batch;
use crate::checkpoint::{Averaged, Checkpoint, TrainState};
use crate::evaluate::{evaluate, EVAL_BATCH};
use crate::fsutil::write_json;
use crate::model::{DropoutRates, Net};
use crate::recipe::Recipe;
use fer_dataset::data::Sample;

/// Every float tensor of a module (weights and running statistics), flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.0.push(value.reshape([n]));
    }
}

/// Replaces every float tensor, in visiting order, by the next of `values`.
struct Replace {
    values: std::vec::IntoIter<Tensor<1>>,
}

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.values.next() {
            Some(v) => param.map(|old| {
                let shape = old.shape();
                v.reshape(shape)
            }),
            None => param,
        }
    }
}

/// The element-wise mean of the weights in `paths` (burn records of [`Net`]).
///
/// # Errors
/// No paths, or a file that cannot be read as the network's weights.
pub fn mean_weights(paths: &[PathBuf], device: &Device) -> Result<Net> {
    let Some(first) = paths.first() else {
        bail!("no weights to average");
    };
    let load = |path: &PathBuf| {
        fer_dataset::safe_read::check(path, fer_dataset::safe_read::Kind::Weights)?;
        Net::new(device, DropoutRates::default())
            .try_load_file(path)
            .with_context(|| format!("cannot load weights {} to average", path.display()))
    };
    let base = load(first)?;
    let mut sum = Collect(Vec::new());
    base.visit(&mut sum);
    for path in &paths[1..] {
        let mut next = Collect(Vec::new());
        load(path)?.visit(&mut next);
        for (s, n) in sum.0.iter_mut().zip(next.0) {
            *s = s.clone().add(n);
        }
    }
    let count = paths.len() as f64;
    let values: Vec<Tensor<1>> = sum.0.into_iter().map(|t| t.div_scalar(count)).collect();
    Ok(base.map(&mut Replace {
        values: values.into_iter(),
    }))
}

/// Measures BatchNorm's running statistics of `model` on `train` (no augmentation, Dropout off):
/// each batch goes through the network as in training, every BatchNorm normalizing with the
/// batch's own statistics, and each running mean and variance becomes the mean of its batch
/// statistics, each batch weighted by its size. The weights do not change. Runs on the plain
/// (inference) device: an autodiff graph without a backward pass would keep every batch's
/// activations.
pub fn recompute_batch_norm(model: Net, train: &[Sample], device: &Device) -> Net {
    let mut model = model.valid();
    let blocks = model.blocks.len();
    let mut sums: Vec<Option<(Tensor<1>, Tensor<1>)>> = vec![None; blocks];
    let all: Vec<usize> = (0..train.len()).collect();
    for idx in all.chunks(EVAL_BATCH) {
        let (mut x, _) = make_batch(train, idx, None, device);
        let n = idx.len() as f64;
        for (block, sum) in model.blocks.iter().zip(sums.iter_mut()) {
            let y = block.conv_relu(x);
            let r = batch_norm_train(
                y,
                block.norm.gamma.val(),
                block.norm.beta.val(),
                block.norm.epsilon,
            );
            let (mean, var) = (r.mean.mul_scalar(n), r.variance.mul_scalar(n));
            *sum = Some(match sum.take() {
                Some((m, v)) => (m.add(mean), v.add(var)),
                None => (mean, var),
            });
            x = block.downsample(r.output);
        }
    }
    let count = train.len().max(1) as f64;
    for (block, sum) in model.blocks.iter_mut().zip(sums) {
        if let Some((mean, var)) = sum {
            block.norm.running_mean = RunningState::new(mean.div_scalar(count));
            block.norm.running_var = RunningState::new(var.div_scalar(count));
        }
    }
    model
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
        say!(
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
    let mean = mean_weights(&paths, device)?;
    let mean = recompute_batch_norm(mean, train, device);
    let (val_loss, val_accuracy, _) = evaluate(&mean, validation, device, progress);
    let value = recipe.monitor.value(val_loss, val_accuracy);
    let chosen = recipe.monitor.improves(value, state.best_value);
    say!(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_averaging_window_fits_the_epochs_that_were_kept() {
        // `v1` (the first default) keeps the weights of its last cycle (epochs 61-80) and averages 10.
        let mut r = Recipe::v1();
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
        // Early stopping at epoch 2 of `v1` (whose last cycle starts at 61) used to fail
        // after training with "epochs 61 to 2" and write no model.
        let dir = tempfile::tempdir().expect("temp dir");
        let ckpt = Checkpoint::new(dir.path());
        let mut state = TrainState {
            epoch: 2,
            best_epoch: Some(2),
            best_value: Some(0.5),
            stopped_early: true,
            finished: true,
            train_seconds: 1.0,
            ..TrainState::new(&Recipe::v1(), 10)
        };
        let device = crate::device();
        let result = average_last_epochs(&ckpt, &mut state, &[], &[], &device, false);
        assert!(matches!(result, Ok(None)), "no average, no error");
        assert!(state.averaged.is_none());
    }
}
