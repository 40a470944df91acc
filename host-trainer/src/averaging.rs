//! Weight averaging (stochastic weight averaging, Izmailov et al. 2018): the mean of the weights
//! the last epochs of a run ended with, with BatchNorm's running statistics measured anew on the
//! training images, since the mean of the epochs' statistics is not the statistics of the mean.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, RunningState};
use burn::tensor::module::batch_norm_train;
use burn::tensor::{Device, Tensor};

use crate::batches::make_batch;
use crate::data::Sample;
use crate::model::{DropoutRates, Net};
use crate::training::EVAL_BATCH;

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
            let y = block.relu.forward(block.conv.forward(x));
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
            x = block.pool.forward(r.output);
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
