//! Evaluation of a float model on a list of samples: loss, accuracy and softmax scores.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Tensor};
use edge_runtime::format::QParams;

use crate::batches::make_batch;
use crate::model::Net;
use fer_dataset::data::Sample;

/// Batch size for evaluation (no gradients, so larger batches are cheap).
pub const EVAL_BATCH: usize = 200;

/// Mean cross-entropy, accuracy, and the softmax scores of every sample (row-major `[n, 7]`).
pub fn evaluate(
    model: &Net,
    samples: &[Sample],
    device: &Device,
    progress: bool,
) -> (f64, f64, Vec<f32>) {
    evaluate_with(model, samples, device, progress, |net, images| {
        net.forward(images)
    })
}

/// [`evaluate`] of the int8 model as [`Net::forward_quant_sim`] simulates it, with the
/// activation grids `grids`.
pub fn evaluate_quant_sim(
    model: &Net,
    samples: &[Sample],
    device: &Device,
    progress: bool,
    grids: &[QParams],
) -> (f64, f64, Vec<f32>) {
    evaluate_with(model, samples, device, progress, |net, images| {
        net.forward_quant_sim(images, grids)
    })
}

/// [`evaluate`] with the logits of `forward`.
fn evaluate_with(
    model: &Net,
    samples: &[Sample],
    device: &Device,
    progress: bool,
    forward: impl Fn(&Net, Tensor<4>) -> Tensor<2>,
) -> (f64, f64, Vec<f32>) {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let bar = crate::progress::bar(
        progress,
        samples.len().div_ceil(EVAL_BATCH) as u64,
        "evaluate",
    );
    let (mut loss_sum, mut correct) = (0.0, 0usize);
    let mut scores = Vec::with_capacity(samples.len() * edge_runtime::labels::CLASS_COUNT);
    let all: Vec<usize> = (0..samples.len()).collect();
    for idx in all.chunks(EVAL_BATCH) {
        let (images, targets) = make_batch(samples, idx, None, device);
        let logits = forward(model, images);
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
