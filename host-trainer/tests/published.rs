//! The published artifacts are what the current code writes for the published weights: the float
//! ONNX, the int8 model file and its QDQ ONNX, byte for byte. Refactors of the network
//! description, the exporters or the quantizer must keep them unchanged.

use host_trainer::artifacts::{load_model, onnx_doc};
use host_trainer::commands::quantize::calibration_images;
use host_trainer::network::Network;
use host_trainer::onnx::{float, qdq};
use host_trainer::quantize::{quantize, Calibration, RangeMethod};
use host_trainer::split::Manifest;
use prost::Message;

fn published(name: &str) -> Vec<u8> {
    let path = fer_test_support::models_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn the_published_files_are_reproduced_byte_for_byte() {
    let models = fer_test_support::models_dir();
    let device = host_trainer::device();
    let (net, state) = load_model(&models, "fer_cnn", &device).expect("the published model");
    let network = Network::read(&net).expect("network");
    assert!(
        float::to_bytes(&network, &onnx_doc(&state)) == published("fer_cnn.onnx"),
        "the float ONNX export differs from models/fer_cnn.onnx"
    );

    let manifest = Manifest::read(&models.join("split.json")).expect("split.json");
    let images = calibration_images(&fer_test_support::fer_dir(), &manifest).expect("images");
    let calibration = Calibration::collect(&net, &images, &device);
    let report: serde_json::Value =
        serde_json::from_slice(&published("fer_cnn.quant.json")).expect("quant.json");
    let chosen: RangeMethod =
        serde_json::from_value(report["chosen"].clone()).expect("chosen method");
    let q = quantize(&network, &calibration.qparams(chosen)).expect("quantize");
    assert!(
        q.file == published("fer_cnn.int8.bin"),
        "the quantizer's output differs from models/fer_cnn.int8.bin"
    );
    let qdq = qdq::build(&network, &q.layers).expect("qdq");
    assert!(
        qdq.encode_to_vec() == published("fer_cnn.qdq.onnx"),
        "the QDQ export differs from models/fer_cnn.qdq.onnx"
    );
}
