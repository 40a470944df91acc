//! The network's size, a short training run on real images, interruption and resume.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use common::*;
use host_trainer::data::{self, BadImages};
use host_trainer::model::{DropoutRates, Net};
use host_trainer::recipe::Recipe;
use host_trainer::training::{self, make_batch, Checkpoint, Outcome, RunOptions};

fn real_samples(per_class: usize) -> Vec<data::Sample> {
    let dir = temp();
    copy_layout(
        dir.path(),
        "train",
        &first_images("train", per_class),
        false,
        false,
    );
    data::load(dir.path(), BadImages::Fail)
        .expect("load")
        .samples
}

#[test]
fn parameter_count_is_the_papers() {
    let net = Net::new(&host_trainer::device(), DropoutRates::default());
    assert_eq!(net.trainable_params(), 934_471);
    // burn also counts the 2 x 608 BatchNorm running statistics.
    assert_eq!(net.num_params(), 934_471 + 1216);
}

#[test]
fn loss_falls_when_training_on_real_faces() {
    let samples = real_samples(6); // 42 faces
    let device = host_trainer::device().autodiff();
    eprintln!("training on {device:?}");
    device.seed(1);
    let mut net = Net::new(&device, DropoutRates::default());
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let idx: Vec<usize> = (0..samples.len()).collect();
    let mut losses = Vec::new();
    for _ in 0..30 {
        let (x, y) = make_batch(&samples, &idx, None, &device);
        let loss = loss_fn.forward(net.forward(x), y);
        losses.push(loss.clone().into_scalar::<f64>());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
    }
    let first = losses[..3].iter().sum::<f64>() / 3.0;
    let last = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.6 * first, "loss did not fall: {losses:?}");
}

#[test]
fn interrupted_run_resumes_and_finishes() {
    let samples = real_samples(12);
    let (train, val) = samples.split_at(70);
    let out = temp();
    let ckpt = Checkpoint::new(&out.path().join("ckpt"));
    let mut recipe = Recipe::default_recipe();
    recipe.epochs = 2;
    recipe.batch_size = 20;
    let device = host_trainer::device();
    // A stop request before the first batch ends: checkpoint after batch 1 of epoch 1.
    let opts = RunOptions {
        checkpoint_every: 0,
        resume: false,
        progress: false,
        stop: Arc::new(AtomicBool::new(true)),
    };
    match training::train(&recipe, train, val, &device, &ckpt, &opts).expect("train") {
        Outcome::Interrupted(s) => assert_eq!((s.epoch, s.batch), (0, 1)),
        Outcome::Finished(..) => panic!("should have been interrupted"),
    }
    assert!(ckpt.exists());
    let opts = RunOptions {
        resume: true,
        stop: Arc::new(AtomicBool::new(false)),
        ..opts
    };
    match training::train(&recipe, train, val, &device, &ckpt, &opts).expect("resume") {
        Outcome::Finished(_, s) => {
            assert_eq!(s.history.len(), 2);
            assert!(s.finished);
            assert!(s.best_epoch.is_some());
        }
        Outcome::Interrupted(_) => panic!("should have finished"),
    }
    // A larger --epochs extends the finished run, keeping its history and the learning rates its
    // finished epochs had (the extension is a warm restart).
    let before = recipe.clone();
    recipe.epochs = 3;
    match training::train(&recipe, train, val, &device, &ckpt, &opts).expect("extend") {
        Outcome::Finished(_, s) => {
            assert_eq!(s.history.len(), 3);
            for p in [0.5, 1.0, 1.5, 1.99] {
                assert_eq!(
                    s.recipe.lr_at(p),
                    before.lr_at(p),
                    "rate at epoch {p} changed"
                );
            }
            assert!(s.recipe.lr_at(2.0) > before.lr_at(1.99));
        }
        Outcome::Interrupted(_) => panic!("should have finished"),
    }
    // Resuming with other data is refused with a clear message.
    let e = training::train(&recipe, &train[..50], val, &device, &ckpt, &opts)
        .err()
        .expect("mismatch refused");
    assert!(format!("{e:#}").contains("training images"), "{e:#}");
}
