//! The network's size, a short training run on real images, interruption and resume.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use common::*;
use fer_dataset::data::{self, BadImages};
use host_trainer::averaging;
use host_trainer::batches::make_batch;
use host_trainer::checkpoint::Checkpoint;
use host_trainer::distill::SoftTargets;
use host_trainer::model::{DropoutRates, Net};
use host_trainer::recipe::{Recipe, Schedule};
use host_trainer::training::{self, Outcome, RunOptions};

/// Options of a new run without progress bars or mid-epoch checkpoints; `stop` as if Ctrl-C had
/// been pressed before it started.
fn fresh_run(stop: bool) -> RunOptions {
    RunOptions {
        checkpoint_every: 0,
        resume: false,
        init_from: None,
        progress: false,
        stop: Arc::new(AtomicBool::new(stop)),
        soft_targets: None,
        raw_train: None,
    }
}

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
    let mut recipe = Recipe::v1();
    recipe.epochs = 2;
    recipe.batch_size = 20;
    let device = host_trainer::device();
    // A stop request before the first batch ends: checkpoint after batch 1 of epoch 1.
    let opts = fresh_run(true);
    match training::train(&recipe, train, val, &device, &ckpt, &opts).expect("train") {
        Outcome::Interrupted(s) => assert_eq!((s.epoch, s.batch), (0, 1)),
        Outcome::Finished(..) => panic!("should have been interrupted"),
    }
    assert!(ckpt.exists());
    assert_one_checkpoint_set(&ckpt.dir, "000-00001");
    let opts = RunOptions {
        resume: true,
        stop: Arc::new(AtomicBool::new(false)),
        ..opts
    };
    match training::train(&recipe, train, val, &device, &ckpt, &opts).expect("resume") {
        Outcome::Finished(_, s) => {
            assert_eq!(s.history.len(), 2);
            // Each epoch records its validation macro-F1 beside the accuracy.
            assert!(
                s.history
                    .iter()
                    .all(|e| e.val_macro_f1.is_some_and(|f| (0.0..=1.0).contains(&f))),
                "{:?}",
                s.history
            );
            assert!(s.finished);
            assert!(s.best_epoch.is_some());
            assert_one_checkpoint_set(&ckpt.dir, "002-00000");
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
                    s.recipe.lr_at(p, &[]),
                    before.lr_at(p, &[]),
                    "rate at epoch {p} changed"
                );
            }
            assert!(s.recipe.lr_at(2.0, &[]) > before.lr_at(1.99, &[]));
        }
        Outcome::Interrupted(_) => panic!("should have finished"),
    }
    // Resuming an unfinished run with fewer --epochs than it has trained says so: a finished
    // 2-epoch run, extended to 3 and stopped in its third epoch, then asked for 1 epoch.
    let short_ckpt = Checkpoint::new(&out.path().join("short"));
    let mut two = recipe.clone();
    two.epochs = 2;
    let fresh = fresh_run(false);
    training::train(&two, train, val, &device, &short_ckpt, &fresh).expect("2 epochs");
    let mut three = recipe.clone();
    three.epochs = 3;
    let stopping = RunOptions {
        resume: true,
        stop: Arc::new(AtomicBool::new(true)),
        ..fresh
    };
    match training::train(&three, train, val, &device, &short_ckpt, &stopping).expect("extend") {
        Outcome::Interrupted(s) => assert_eq!((s.epoch, s.finished), (2, false)),
        Outcome::Finished(..) => panic!("should have been interrupted"),
    }
    let mut one = recipe.clone();
    one.epochs = 1;
    let e = training::train(&one, train, val, &device, &short_ckpt, &stopping)
        .err()
        .expect("fewer epochs than trained");
    assert!(
        format!("{e:#}").contains("has trained 2 epochs, more than --epochs 1"),
        "{e:#}"
    );
    // Resuming with other data is refused with a clear message.
    let e = training::train(&recipe, &train[..50], val, &device, &ckpt, &opts)
        .err()
        .expect("mismatch refused");
    assert!(format!("{e:#}").contains("training images"), "{e:#}");
}

/// The checkpoint holds exactly one weight and one optimizer file, those of save `tag`, and its
/// state names them.
fn assert_one_checkpoint_set(dir: &std::path::Path, tag: &str) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list checkpoint")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("model") || n.starts_with("optimizer"))
        .collect();
    names.sort();
    let want = [format!("model-{tag}.bpk"), format!("optimizer-{tag}.bpk")];
    assert_eq!(names, want);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).expect("state"))
            .expect("json");
    assert_eq!(state["files"][0], want[0].as_str());
    assert_eq!(state["files"][1], want[1].as_str());
}

/// Per-channel mean of `x` `[n, c, h, w]` over n, h and w.
fn channel_means(x: burn::tensor::Tensor<4>) -> Vec<f32> {
    let [n, c, h, w] = x.dims();
    x.swap_dims(0, 1)
        .reshape([c, n * h * w])
        .mean_dim(1)
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32")
}

#[test]
fn weight_average_is_the_mean_and_measures_batch_norm_anew() {
    let samples = real_samples(20); // 140 faces: one batch of the statistics pass
    let out = temp();
    let device = host_trainer::device();
    device.seed(3);
    let (a, b) = (
        Net::new(&device, DropoutRates::default()),
        Net::new(&device, DropoutRates::default()),
    );
    let (pa, pb) = (out.path().join("a.bpk"), out.path().join("b.bpk"));
    a.clone().save_file(&pa).expect("save a");
    b.clone().save_file(&pb).expect("save b");
    let mean = averaging::mean_weights(&[pa, pb], &device).expect("average");
    let weight = |n: &Net| {
        n.fc2
            .weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let (wa, wb, wm) = (weight(&a), weight(&b), weight(&mean));
    assert_ne!(wa, wb);
    for ((x, y), m) in wa.iter().zip(&wb).zip(&wm) {
        assert!((0.5 * (x + y) - m).abs() < 1e-6, "{x} {y} {m}");
    }

    // BatchNorm's running mean becomes the mean of its input (conv + ReLU) over the images.
    let measured = averaging::recompute_batch_norm(mean, &samples, &device);
    let idx: Vec<usize> = (0..samples.len()).collect();
    let (images, _) = make_batch(&samples, &idx, None, &device);
    let first = &measured.blocks[0];
    let expected = channel_means(first.relu.forward(first.conv.forward(images)));
    let running = first
        .norm
        .running_mean
        .value()
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32");
    assert_eq!(running.len(), 32);
    for (r, e) in running.iter().zip(&expected) {
        assert!(
            (r - e).abs() < 1e-4 * e.abs().max(1.0),
            "running {r}, measured {e}"
        );
    }
    assert!(
        expected.iter().any(|&e| e > 1e-3),
        "a dead first layer proves nothing"
    );
}

#[test]
fn a_recipe_that_replays_a_finished_run_takes_it_over_and_averages_its_last_cycle() {
    let samples = real_samples(12);
    let (train, val) = samples.split_at(70);
    let out = temp();
    let ckpt = Checkpoint::new(&out.path().join("ckpt"));
    let device = host_trainer::device();
    let mut first = Recipe::v1();
    first.epochs = 2;
    first.batch_size = 20;
    first.schedule = Schedule::Cosine {
        warmup_epochs: 1.0,
        final_fraction: 0.02,
        restarts: vec![],
    };
    first.last_cycle_head_dropout = None;
    first.head_dropout_from = None;
    first.average_last = 0;
    let opts = RunOptions {
        resume: true,
        ..fresh_run(false)
    };
    training::train(&first, train, val, &device, &ckpt, &opts).expect("first run");
    for e in 1..=2 {
        assert!(
            !ckpt.epoch_weights(e).exists(),
            "epoch {e} weights kept by a recipe that does not average"
        );
    }
    // The same run with a second cycle that trains without the head Dropouts' old rate, and
    // keeps the mean of its two epochs: it would have trained epochs 1-2 exactly as they were.
    let mut grown = first.clone();
    grown.epochs = 4;
    grown.schedule = Schedule::Cosine {
        warmup_epochs: 1.0,
        final_fraction: 0.02,
        restarts: vec![2],
    };
    grown.last_cycle_head_dropout = Some(0.1);
    grown.average_last = 2;
    let mut state = match training::train(&grown, train, val, &device, &ckpt, &opts) {
        Ok(Outcome::Finished(_, s)) => s,
        _ => panic!("the grown run should finish"),
    };
    assert_eq!(state.history.len(), 4);
    assert_eq!(
        state.recipe.average_last, 2,
        "the checkpoint kept its own recipe"
    );
    assert_eq!(state.recipe.last_cycle_head_dropout, Some(0.1));
    assert_eq!(
        state.recipe.dropout_at(2).head,
        0.1,
        "the new cycle's head Dropout"
    );
    for e in 3..=4 {
        assert!(ckpt.epoch_weights(e).is_file(), "epoch {e} weights kept");
    }
    averaging::average_last_epochs(&ckpt, &mut state, train, val, &device, false).expect("average");
    let avg = state.averaged.clone().expect("recorded");
    assert_eq!(avg.epochs, (3, 4));
    assert!((0.0..=1.0).contains(&avg.val_accuracy));
    // Kept in the checkpoint: resuming the finished run needs the epochs' weights no more.
    assert!(ckpt.average().is_file());
    for e in 3..=4 {
        std::fs::remove_file(ckpt.epoch_weights(e)).expect("remove epoch weights");
    }
    let mut resumed = match training::train(&grown, train, val, &device, &ckpt, &opts) {
        Ok(Outcome::Finished(_, s)) => s,
        _ => panic!("the finished run should stay finished"),
    };
    assert_eq!(resumed.averaged.as_ref().map(|a| a.epochs), Some((3, 4)));
    averaging::average_last_epochs(&ckpt, &mut resumed, train, val, &device, false)
        .expect("the kept average is reused");
    // A recipe that would have trained the first epochs otherwise does not take over: it only
    // extends the run (a warm restart) under the checkpoint's own recipe.
    let mut other = grown.clone();
    other.epochs = 5;
    other.dropout.head = 0.5;
    match training::train(&other, train, val, &device, &ckpt, &opts) {
        Ok(Outcome::Finished(_, s)) => {
            assert_eq!(s.history.len(), 5);
            assert_eq!(s.recipe.dropout.head, 0.25);
        }
        _ => panic!("the extension should finish"),
    }
}

/// A run whose loss is not finite stops at that batch with a message, before the weights are
/// updated, and leaves no checkpoint of the damaged state: here the starting weights
/// (`--init-from`) are finite (non-finite ones are refused by layer before training, see
/// `bad_input`) but their output biases of ±3e38 overflow the loss, as a diverged run's would.
#[test]
fn a_non_finite_loss_stops_the_run_before_the_weights_change() {
    let samples = real_samples(6);
    let (train, val) = samples.split_at(35);
    let out = temp();
    let device = host_trainer::device();
    let mut net = Net::new(&device, DropoutRates::default());
    let bias = net.out.bias.take().expect("output bias");
    net.out.bias = Some(bias.map(|b| {
        let signs: Vec<f32> = (0..7)
            .map(|i| if i % 2 == 0 { 3e38 } else { -3e38 })
            .collect();
        burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(signs, [7]), &b.device())
    }));
    let damaged = out.path().join("damaged.bpk");
    net.save_file(&damaged).expect("save");
    let ckpt = Checkpoint::new(&out.path().join("ckpt"));
    let mut recipe = Recipe::v2();
    recipe.epochs = 1;
    recipe.batch_size = 10;
    let opts = RunOptions {
        checkpoint_every: 1,
        resume: false,
        init_from: Some(damaged),
        progress: false,
        stop: Arc::new(AtomicBool::new(false)),
        soft_targets: None,
        raw_train: None,
    };
    let e = training::train(&recipe, train, val, &device, &ckpt, &opts)
        .err()
        .expect("a non-finite loss stops the run");
    let message = format!("{e:#}");
    assert!(
        message.contains("the training loss became") && message.contains("batch 1"),
        "{message}"
    );
    assert!(
        !ckpt.exists(),
        "no checkpoint of a run that never took a step"
    );
}

/// The `v2` recipe cut to one epoch of batches of 10 without weight averaging: the base of the
/// tests that check one setting.
fn short_recipe(name: &str) -> Recipe {
    let mut recipe = Recipe::v2();
    recipe.name = name.into();
    recipe.epochs = 1;
    recipe.batch_size = 10;
    recipe.average_last = 0;
    recipe
}

/// A recipe with SGD (Nesterov momentum, weight decay) trains, checkpoints its optimizer state
/// and resumes from it.
#[test]
fn an_sgd_recipe_trains_and_resumes() {
    let samples = real_samples(6);
    let (train, val) = samples.split_at(35);
    let out = temp();
    let ckpt = Checkpoint::new(&out.path().join("ckpt"));
    let mut recipe = short_recipe("sgd");
    recipe.learning_rate = 0.01;
    recipe.optimizer = host_trainer::recipe::Optimizer::Sgd {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 5e-4,
    };
    let device = host_trainer::device();
    let opts = fresh_run(false);
    training::train(&recipe, train, val, &device, &ckpt, &opts).expect("one SGD epoch");
    recipe.epochs = 2;
    let opts = RunOptions {
        resume: true,
        ..opts
    };
    match training::train(&recipe, train, val, &device, &ckpt, &opts).expect("resumed") {
        Outcome::Finished(_, s) => {
            assert_eq!(s.history.len(), 2);
            assert_eq!(s.recipe.optimizer, recipe.optimizer);
            assert!(s.history.iter().all(|e| e.train_loss.is_finite()));
        }
        Outcome::Interrupted(_) => panic!("should have finished"),
    }
}

/// A class-balanced recipe (`class_balance`) trains on an imbalanced split, and its loss is the
/// weighted one: the same run with the classes weighed alike records another training loss.
#[test]
fn a_class_balanced_recipe_weights_its_loss() {
    let samples = real_samples(8);
    // Every class but the first cut to 2 faces: 8 against 2 (weights 1 and 4 at balance 1).
    let mut kept = [0usize; 7];
    let train: Vec<_> = samples
        .iter()
        .filter(|s| {
            let i = s.label.index();
            kept[i] += 1;
            i == 0 || kept[i] <= 2
        })
        .cloned()
        .collect();
    let val = &samples[..14];
    let loss_with = |balance: f64| {
        let out = temp();
        let ckpt = Checkpoint::new(&out.path().join("ckpt"));
        let mut recipe = short_recipe("balanced");
        recipe.label_smoothing = 0.1;
        recipe.class_balance = balance;
        assert_eq!(recipe.check(), Ok(()));
        let device = host_trainer::device();
        match training::train(&recipe, &train, val, &device, &ckpt, &fresh_run(false))
            .expect("one epoch")
        {
            Outcome::Finished(_, s) => {
                assert_eq!(s.recipe.class_balance, balance);
                s.history[0].train_loss
            }
            Outcome::Interrupted(_) => panic!("should have finished"),
        }
    };
    let (alike, balanced) = (loss_with(0.0), loss_with(1.0));
    assert!(alike.is_finite() && balanced.is_finite());
    assert!(
        (alike - balanced).abs() > 1e-4,
        "the weights changed nothing: {alike} and {balanced}"
    );
}

#[test]
fn a_distilling_recipe_follows_its_teacher_and_needs_its_targets() {
    let samples = real_samples(6);
    let (train, val) = samples.split_at(35);
    let out = temp();
    let mut recipe = Recipe::paper();
    recipe.name = "distill".into();
    recipe.epochs = 40;
    recipe.patience = 40;
    recipe.batch_size = 10;
    recipe.learning_rate = 1e-3;
    recipe.distill = Some(host_trainer::recipe::Distill {
        weight: 1.0,
        temperature: 1.0,
    });
    let device = host_trainer::device();

    // Without the teachers' targets the run refuses to start.
    let e = training::train(
        &recipe,
        train,
        val,
        &device,
        &Checkpoint::new(&out.path().join("none")),
        &fresh_run(false),
    )
    .err()
    .expect("no soft targets");
    assert!(format!("{e:#}").contains("host-trainer teach"), "{e:#}");

    // A teacher that names the next class after the label, with weight 1 (labels ignored): the
    // student learns the teacher's classes, not the labels. (Ignored or misaligned targets would
    // leave it at chance, 1 in 7.)
    let teacher_class = |s: &data::Sample| (s.label.index() + 1) % 7;
    let targets: Vec<[f32; 7]> = train
        .iter()
        .map(|s| {
            let mut p = [0.1 / 6.0; 7];
            p[teacher_class(s)] = 0.9;
            p
        })
        .collect();
    // Targets made at another temperature than the recipe's are refused before the first step.
    let e = training::train(
        &recipe,
        train,
        val,
        &device,
        &Checkpoint::new(&out.path().join("hot")),
        &RunOptions {
            soft_targets: Some(Arc::new(SoftTargets {
                temperature: 4.0,
                rows: targets.clone(),
            })),
            ..fresh_run(false)
        },
    )
    .err()
    .expect("targets at temperature 4 for a recipe at 1");
    assert!(
        format!("{e:#}").contains("targets are at temperature 4"),
        "{e:#}"
    );

    let opts = RunOptions {
        soft_targets: Some(Arc::new(SoftTargets {
            temperature: 1.0,
            rows: targets,
        })),
        ..fresh_run(false)
    };
    // The run keeps its best epoch on validation: validate on the training faces labelled with
    // the teacher's classes, so the kept epoch is the one that follows the teacher best.
    let teacher_labelled: Vec<data::Sample> = train
        .iter()
        .map(|s| data::Sample {
            label: edge_runtime::labels::Emotion::ALL[teacher_class(s)],
            ..s.clone()
        })
        .collect();
    recipe.monitor = host_trainer::recipe::Monitor::ValAccuracy;
    let ckpt = Checkpoint::new(&out.path().join("ckpt"));
    let run = training::train(&recipe, train, &teacher_labelled, &device, &ckpt, &opts);
    let model = match run.expect("run") {
        Outcome::Finished(model, _) => model,
        Outcome::Interrupted(_) => panic!("should have finished"),
    };
    let (_, label_accuracy, scores) =
        host_trainer::evaluate::evaluate(&model, train, &device, false);
    let predicted = fer_dataset::metrics::argmax_rows(&scores);
    let follows = train
        .iter()
        .zip(&predicted)
        .filter(|(s, &p)| p == teacher_class(s))
        .count();
    assert!(
        follows * 10 >= train.len() * 6,
        "the student agrees with the teacher on {follows} of {} faces",
        train.len()
    );
    assert!(label_accuracy < 0.2, "label accuracy {label_accuracy}");
}

#[test]
fn a_plateau_schedule_lowers_the_rate_when_validation_stalls() {
    let samples = real_samples(3);
    let (train, val) = samples.split_at(18);
    let out = temp();
    let mut recipe = Recipe::paper();
    recipe.name = "plateau".into();
    recipe.epochs = 6;
    recipe.patience = 10;
    recipe.batch_size = 6;
    recipe.learning_rate = 1e-3;
    recipe.monitor = host_trainer::recipe::Monitor::ValAccuracy;
    recipe.schedule = Schedule::Plateau {
        warmup_epochs: 0.0,
        factor: 0.5,
        patience: 1,
        min_fraction: 0.01,
    };
    let device = host_trainer::device();
    let ckpt = Checkpoint::new(&out.path().join("ckpt"));
    let state = match training::train(&recipe, train, val, &device, &ckpt, &fresh_run(false))
        .expect("run")
    {
        Outcome::Finished(_, state) => state,
        Outcome::Interrupted(_) => panic!("should have finished"),
    };
    let h = &state.history;
    assert_eq!(h.len(), 6);
    let batches = train.len().div_ceil(recipe.batch_size);
    let mut best = h[0].val_accuracy;
    let mut expected = recipe.learning_rate;
    for e in 1..h.len() {
        // Patience 1: every epoch that does not beat the best so far halves the next rate.
        if h[e - 1].val_accuracy > best || e == 1 {
            best = best.max(h[e - 1].val_accuracy);
        } else {
            expected *= 0.5;
        }
        let recorded = h[e].learning_rate;
        assert!(
            (recorded - expected).abs() <= 1e-12,
            "epoch {}: rate {recorded}, expected {expected} after validation accuracies {:?}",
            e + 1,
            h[..e].iter().map(|s| s.val_accuracy).collect::<Vec<_>>()
        );
        assert_eq!(
            recorded,
            recipe.lr_at(e as f64 + (batches - 1) as f64 / batches as f64, &h[..e])
        );
    }
    // These three validation faces stall: the rule was exercised, not only the base rate.
    assert!(
        h[5].learning_rate < recipe.learning_rate,
        "no reduction: {h:?}"
    );
}
