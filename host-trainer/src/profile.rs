//! `host-trainer bench --profile`: where one training step of the paper's network spends its
//! time, operation by operation, on the current backend.
//!
//! Each operation runs alone on an input of the shape it has in the real step (batch 40), with
//! the layer's real parameters, and is timed forward and backward (median of `reps` runs, device
//! synchronised around each). A backward is timed as `(y · g).sum().backward()` for a random `g`
//! of `y`'s shape, minus the same for `y` itself as a leaf, so the table holds the operation's
//! own backward only. The sum of the rows is printed next to a whole measured step: the
//! difference is what the parts do not see (autodiff bookkeeping, allocation, cache effects).

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::batches::make_batch;
use crate::model::{DropoutRates, Net, FILTERS};
use crate::recipe::Recipe;
use edge_runtime::labels::Emotion;
use fer_dataset::data::{Sample, PIXELS, SIDE};
use fer_dataset::rng::Rng;

/// One row of the table: forward and backward milliseconds of one operation.
pub struct Row {
    pub name: String,
    pub forward_ms: f64,
    pub backward_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn sync(device: &Device) {
    let _ = device.sync();
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Median forward and backward time of `f` on random inputs of `shape`. `input_grad`: whether
/// the step needs the gradient of the input (false only for the first layer, fed by images).
fn time_op<const D: usize, const E: usize>(
    ad: &Device,
    shape: [usize; D],
    input_grad: bool,
    reps: usize,
    f: impl Fn(Tensor<D>) -> Tensor<E>,
) -> (f64, f64) {
    let (mut fwd, mut bwd, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps + 2 {
        let x = Tensor::<D>::random(shape, Distribution::Uniform(-1.0, 1.0), ad)
            .set_require_grad(input_grad);
        sync(ad);
        let t = Instant::now();
        let y = f(x);
        sync(ad);
        fwd.push(ms_since(t));

        let g = Tensor::<E>::random(y.shape(), Distribution::Uniform(-1.0, 1.0), ad);
        let z = (y.clone() * g.clone()).sum();
        sync(ad);
        let t = Instant::now();
        let _grads = z.backward();
        sync(ad);
        bwd.push(ms_since(t));

        // The same loss on a leaf of y's shape: what the measurement itself costs.
        let leaf =
            Tensor::<E>::random(y.shape(), Distribution::Uniform(-1.0, 1.0), ad).require_grad();
        let z = (leaf * g).sum();
        sync(ad);
        let t = Instant::now();
        let _grads = z.backward();
        sync(ad);
        base.push(ms_since(t));
    }
    let drop_warmup = |v: Vec<f64>| median(v.into_iter().skip(2).collect());
    let backward = (drop_warmup(bwd) - drop_warmup(base)).max(0.0);
    (drop_warmup(fwd), backward)
}

/// The per-operation table of one training step at batch `batch`, and the measured whole step.
pub fn profile(batch: usize, reps: usize) -> Result<(Vec<Row>, f64)> {
    let device = crate::device();
    let ad = device.clone().autodiff();
    device.seed(0);
    let net = Net::new(&ad, DropoutRates::default());
    let mut rows = Vec::new();
    let mut push = |name: String, (forward_ms, backward_ms): (f64, f64)| {
        rows.push(Row {
            name,
            forward_ms,
            backward_ms,
        })
    };

    // Batch assembly on the host (the v2 recipe's augmentation, the costlier one) and the copy
    // to the device.
    let mut rng = Rng::new(1);
    let samples: Vec<Sample> = (0..batch)
        .map(|i| {
            let mut pixels = Box::new([0u8; PIXELS]);
            pixels.iter_mut().for_each(|v| *v = rng.below(256) as u8);
            Sample {
                id: format!("synthetic-{i}"),
                label: Emotion::ALL[i % Emotion::ALL.len()],
                pixels,
            }
        })
        .collect();
    let idx: Vec<usize> = (0..batch).collect();
    let aug = Recipe::v2().augment_at(0);
    let mut assemble = Vec::new();
    for _ in 0..reps + 2 {
        let t = Instant::now();
        let batch = make_batch(&samples, &idx, Some((aug, &mut rng)), &ad);
        sync(&ad);
        assemble.push(ms_since(t));
        drop(batch);
    }
    push(
        "batch assembly + copy to device".into(),
        (median(assemble), 0.0),
    );

    let mut side = SIDE;
    let mut cin = 1;
    for (i, (block, &cout)) in net.blocks.iter().zip(FILTERS.iter()).enumerate() {
        let n = i + 1;
        let at = [batch, cin, side, side];
        let out = [batch, cout, side, side];
        let pooled = [batch, cout, side / 2, side / 2];
        push(
            format!("conv{n} {cin}->{cout} @{side}x{side} + relu"),
            time_op(&ad, at, i > 0, reps, |x| block.conv_relu(x)),
        );
        push(
            format!("batchnorm{n}"),
            time_op(&ad, out, true, reps, |x| block.normalize(x)),
        );
        push(
            format!("maxpool{n}"),
            time_op(&ad, out, true, reps, |x| block.downsample(x)),
        );
        push(
            format!("dropout{n}"),
            time_op(&ad, pooled, true, reps, |x| {
                crate::fast_ops::dropout(&block.dropout, x)
            }),
        );
        side /= 2;
        cin = cout;
    }
    let flat = cin * side * side;
    push(
        "head dropouts (2)".into(),
        time_op(&ad, [batch, flat], true, reps, |x| {
            net.head_dropout2.forward(net.head_dropout1.forward(x))
        }),
    );
    push(
        format!("dense1 {flat}->512 + relu"),
        time_op(&ad, [batch, flat], true, reps, |x| {
            net.relu.forward(net.fc1.forward(x))
        }),
    );
    push(
        "dense2 512->512 + relu".into(),
        time_op(&ad, [batch, 512], true, reps, |x| {
            net.relu.forward(net.fc2.forward(x))
        }),
    );
    push(
        "dense3 512->7".into(),
        time_op(&ad, [batch, 512], true, reps, |x| net.out.forward(x)),
    );

    // Cross-entropy: forward from logits, backward from the scalar loss.
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % 7).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &ad);
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    for _ in 0..reps + 2 {
        let logits =
            Tensor::<2>::random([batch, 7], Distribution::Uniform(-1.0, 1.0), &ad).require_grad();
        sync(&ad);
        let t = Instant::now();
        let loss = loss_fn.forward(logits, targets.clone());
        sync(&ad);
        fwd.push(ms_since(t));
        let t = Instant::now();
        let _g = loss.backward();
        sync(&ad);
        bwd.push(ms_since(t));
    }
    push("cross-entropy loss".into(), (median(fwd), median(bwd)));

    // The Adam update of all 934,471 parameters, and a whole step for comparison.
    let images = Tensor::<4>::random([batch, 1, SIDE, SIDE], Distribution::Uniform(0.0, 1.0), &ad);
    let mut model = net;
    let mut optim = AdamConfig::new().init();
    let (mut adam, mut step) = (Vec::new(), Vec::new());
    for _ in 0..reps + 2 {
        let t = Instant::now();
        let loss = loss_fn.forward(model.forward(images.clone()), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sync(&ad);
        let before_update = Instant::now();
        model = optim.step(0.0005, model, grads);
        sync(&ad);
        adam.push(ms_since(before_update));
        step.push(ms_since(t));
    }
    push("Adam update".into(), (median(adam), 0.0));
    let whole = median(step.into_iter().skip(2).collect()) + rows[0].forward_ms;
    let _ = model.num_params();
    Ok((rows, whole))
}

/// Prints the table of [`profile`].
pub fn run(batch: usize, reps: usize) -> Result<()> {
    let (rows, whole) = profile(batch, reps)?;
    let total: f64 = rows.iter().map(|r| r.forward_ms + r.backward_ms).sum();
    show!(
        "device {:?}: one training step at batch {batch}, operation by operation (median of {reps})",
        crate::device()
    );
    show!(
        "{:<28} {:>10} {:>10} {:>10} {:>7}",
        "operation",
        "fwd ms",
        "bwd ms",
        "total ms",
        "share"
    );
    for r in &rows {
        let t = r.forward_ms + r.backward_ms;
        show!(
            "{:<28} {:>10.2} {:>10.2} {:>10.2} {:>6.1}%",
            r.name,
            r.forward_ms,
            r.backward_ms,
            t,
            100.0 * t / total
        );
    }
    show!(
        "{:<28} {:>10} {:>10} {:>10.2}",
        "sum of the parts",
        "",
        "",
        total
    );
    show!(
        "{:<28} {:>10} {:>10} {:>10.2}   (batch assembly + copy + forward, backward, Adam)",
        "whole step, measured",
        "",
        "",
        whole
    );
    Ok(())
}
