//! The exported float ONNX runs in tract and gives burn's scores (within 1e-4) on real faces.

mod common;

use burn::module::Module;
use common::*;
use fer_dataset::data::{self, BadImages, SIDE};
use host_trainer::batches::make_batch;
use host_trainer::model::{DropoutRates, Net};
use host_trainer::network::NetworkParams;
use tract_onnx::prelude::*;

/// The committed trained model when present (so the check covers the published artifact), else
/// a freshly initialized one with trained-like BatchNorm statistics from a few steps.
fn model(device: &burn::tensor::Device) -> Net {
    let committed = fer_test_support::models_dir().join("fer_cnn.bpk");
    let net = Net::new(device, DropoutRates::default());
    if committed.is_file() {
        net.try_load_file(&committed)
            .expect("committed model loads")
    } else {
        net
    }
}

#[test]
fn tract_reproduces_burn_scores_on_real_faces() {
    let dir = temp();
    copy_layout(dir.path(), "test", &first_images("test", 8), false, false);
    let samples = data::load(dir.path(), BadImages::Fail)
        .expect("load")
        .samples;
    let device = host_trainer::device();
    let net = model(&device);
    let idx: Vec<usize> = (0..samples.len()).collect();
    let (x, _) = make_batch(&samples, &idx, None, &device);
    let burn_scores: Vec<f32> = burn::tensor::activation::softmax(net.forward(x.clone()), 1)
        .into_data()
        .try_into_vec()
        .expect("f32 scores");

    let bytes =
        host_trainer::onnx::float::to_bytes(&NetworkParams::read(&net).expect("read"), "test");
    let n = samples.len();
    let plan = fer_test_support::tract_plan(&bytes, n).expect("tract runs the ONNX");
    let input: Vec<f32> = x.into_data().try_into_vec().expect("input");
    let input = tract_ndarray::Array4::from_shape_vec((n, 1, SIDE, SIDE), input).expect("shape");
    let out = plan
        .run(tvec!(tract_onnx::prelude::Tensor::from(input).into()))
        .expect("tract runs");
    let tract_scores = out[0].to_plain_array_view::<f32>().expect("f32 out");
    assert_eq!(tract_scores.shape(), &[n, 7]);
    let max_diff = tract_scores
        .iter()
        .zip(&burn_scores)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-4, "max |tract - burn| = {max_diff}");
    // The scores are a distribution per image.
    for row in burn_scores.chunks(7) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn onnx_declares_the_conventions_other_tools_rely_on() {
    let net = Net::new(&host_trainer::device(), DropoutRates::default());
    let m = host_trainer::onnx::float::build(&NetworkParams::read(&net).expect("read"), "doc");
    let g = m.graph.as_ref().expect("graph");
    assert_eq!(g.input[0].name, "input");
    assert_eq!(g.output[0].name, "scores");
    let labels = m
        .metadata_props
        .iter()
        .find(|p| p.key == "labels")
        .expect("labels");
    assert_eq!(
        labels.value,
        "angry,disgust,fear,happy,neutral,sad,surprise"
    );
    // Inference graph: no Dropout nodes; BatchNorm after ReLU in each block.
    assert!(g.node.iter().all(|n| n.op_type != "Dropout"));
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).take(4).collect();
    assert_eq!(ops, ["Conv", "Relu", "BatchNormalization", "MaxPool"]);
}
