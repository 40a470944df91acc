//! `host-trainer bench`: images/s of a training step at batch 40 and of batch-1 inference on the
//! current backend, on synthetic inputs (speed does not depend on pixel values).

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::data::SIDE;
use crate::model::{DropoutRates, Net};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn sync(device: &Device) {
    let _ = device.sync();
}

/// Prints the figures.
pub fn run(steps: usize, inferences: usize) -> Result<()> {
    let device = crate::device();
    let ad = device.clone().autodiff();
    device.seed(0);
    let batch = 40;
    let mut model = Net::new(&ad, DropoutRates::default());
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let images = Tensor::<4>::random([batch, 1, SIDE, SIDE], Distribution::Uniform(0.0, 1.0), &ad);
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % 7).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &ad);
    let mut times = Vec::new();
    for i in 0..steps.max(1) + 3 {
        let t = Instant::now();
        let loss = loss_fn.forward(model.forward(images.clone()), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.0005, model, grads);
        sync(&ad);
        if i >= 3 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let step = median(times);
    println!(
        "device {device:?}: training step, batch {batch}: {:.1} ms median of {} ({:.1} images/s)",
        step * 1e3,
        steps.max(1),
        batch as f64 / step
    );

    let net = model.valid();
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
    println!(
        "device {device:?}: inference, batch 1: {:.2} ms median of {} ({:.0} images/s)",
        inf * 1e3,
        inferences.max(1),
        1.0 / inf
    );
    Ok(())
}
