//! `host-trainer bench`: time of a training step (batch 40 unless told) and of batch-1 inference
//! on the current backend, on synthetic inputs (speed does not depend on pixel values).

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::model::{DropoutRates, Net};
use fer_dataset::data::SIDE;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fastest(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn sync(device: &Device) {
    let _ = device.sync();
}

/// A network, its optimizer and one synthetic batch: what a timed training step needs.
struct Step {
    model: Net,
    optim: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    device: Device,
}

impl Step {
    fn new(device: &Device, batch: usize) -> Self {
        let ad = device.clone().autodiff();
        device.seed(0);
        let labels: Vec<i64> = (0..batch as i64).map(|i| i % 7).collect();
        Step {
            model: Net::new(&ad, DropoutRates::default()),
            optim: AdamConfig::new().init(),
            loss_fn: CrossEntropyLossConfig::new().init(&ad),
            images: Tensor::<4>::random(
                [batch, 1, SIDE, SIDE],
                Distribution::Uniform(0.0, 1.0),
                &ad,
            ),
            targets: Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &ad),
            device: ad,
        }
    }

    /// One forward, backward and Adam update; returns the stepped state and its seconds.
    fn run(mut self) -> (Self, f64) {
        let t = Instant::now();
        let logits = self.model.forward(self.images.clone());
        let loss = self.loss_fn.forward(logits, self.targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(0.0005, self.model, grads);
        sync(&self.device);
        let seconds = t.elapsed().as_secs_f64();
        (self, seconds)
    }
}

/// Prints the figures.
pub fn run(batch: usize, steps: usize, inferences: usize) -> Result<()> {
    let device = crate::device();
    let mut step = Step::new(&device, batch);
    let mut times = Vec::new();
    for i in 0..steps.max(1) + 3 {
        let (stepped, t) = step.run();
        step = stepped;
        if i >= 3 {
            times.push(t);
        }
    }
    show!(
        "device {device:?}: training step, batch {batch}: {:.1} ms median of {} ({:.1} images/s), \
         fastest {:.1} ms",
        median(times.clone()) * 1e3,
        times.len(),
        batch as f64 / median(times.clone()),
        fastest(&times) * 1e3
    );

    let net = step.model.valid();
    let one = Tensor::<4>::random([1, 1, SIDE, SIDE], Distribution::Uniform(0.0, 1.0), &device);
    let mut times = Vec::new();
    for i in 0..inferences.max(1) + 10 {
        let t = Instant::now();
        let out = net.forward(one.clone());
        let _ = out.into_data();
        if i >= 10 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let inf = median(times);
    show!(
        "device {device:?}: inference, batch 1: {:.2} ms median of {} ({:.0} images/s)",
        inf * 1e3,
        inferences.max(1),
        1.0 / inf
    );
    Ok(())
}

/// Times training steps alternately with burn's own layers (convolution, ReLU, BatchNorm, max
/// pool, Dropout) and with [`crate::fast_ops`]' formulations, so that both see the same machine
/// load; prints both.
pub fn compare(batch: usize, steps: usize) -> Result<()> {
    let device = crate::device();
    let mut step = Step::new(&device, batch);
    let mut times = [Vec::new(), Vec::new()];
    for i in 0..2 * (steps.max(1) + 2) {
        let fast = i % 2 == 1;
        crate::fast_ops::set_enabled(fast);
        let (stepped, t) = step.run();
        step = stepped;
        if i >= 4 {
            times[usize::from(fast)].push(t);
        }
    }
    crate::fast_ops::set_enabled(true);
    for (name, t) in [
        ("burn's layers", &times[0]),
        ("host-trainer's (fast_ops)", &times[1]),
    ] {
        show!(
            "device {device:?}: training step, batch {batch}, {name}: {:.1} ms median of {}, \
             fastest {:.1} ms",
            median(t.clone()) * 1e3,
            t.len(),
            fastest(t) * 1e3
        );
    }
    Ok(())
}
