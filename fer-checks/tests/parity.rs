//! Rung 3: accuracy parity on the whole 10% test split of the published manifest: the int8 model
//! (edge-runtime) against the float ONNX (tract), per class.

use edge_runtime::{Emotion, Model, CLASS_COUNT};
use fer_checks::*;
use fer_dataset::metrics::{argmax_rows, Report};

#[test]
fn int8_keeps_the_float_accuracy_on_the_test_split() {
    let samples = test_split();
    let float =
        float_scores(&artifact("fer_cnn.onnx"), &samples, 100).expect("tract runs the float ONNX");
    let float_pred = argmax_rows(&float);
    let file = artifact("fer_cnn.int8.bin");
    let model = Model::from_bytes(&file).expect("valid model");
    let mut arena = vec![0i8; model.arena_size()];
    let int8_pred: Vec<usize> = samples
        .iter()
        .map(|s| {
            model
                .run(&s.pixels[..], &mut arena)
                .expect("inference")
                .argmax()
                .index()
        })
        .collect();
    let truth: Vec<usize> = samples.iter().map(|s| s.label.index()).collect();
    let fr = Report::from_pairs(truth.iter().copied().zip(float_pred.iter().copied()));
    let qr = Report::from_pairs(truth.iter().copied().zip(int8_pred.iter().copied()));
    let agree = float_pred
        .iter()
        .zip(&int8_pred)
        .filter(|(a, b)| a == b)
        .count() as f64
        / samples.len() as f64;

    println!("{} test images", samples.len());
    println!("| class | support | float acc % | int8 acc % | top-1 agreement % |");
    println!("|---|---:|---:|---:|---:|");
    for e in Emotion::ALL {
        let c = e.index();
        let idx: Vec<usize> = (0..samples.len()).filter(|&i| truth[i] == c).collect();
        let pct = |f: &dyn Fn(usize) -> bool| {
            100.0 * idx.iter().filter(|&&i| f(i)).count() as f64 / idx.len() as f64
        };
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            e.name(),
            idx.len(),
            pct(&|i| float_pred[i] == c),
            pct(&|i| int8_pred[i] == c),
            pct(&|i| float_pred[i] == int8_pred[i]),
        );
    }
    println!(
        "| **all** | {} | **{:.2}** | **{:.2}** | **{:.2}** |",
        samples.len(),
        100.0 * fr.accuracy,
        100.0 * qr.accuracy,
        100.0 * agree
    );
    assert_eq!(fr.per_class.len(), CLASS_COUNT);
    // The bars of the published default model (issue "Model quality v2"): float and int8 at or
    // above 66.5% (the paper, Zaidi et al. 2024: 62.66%), int8 within 0.3 points of float and
    // agreeing with it on at least 98.5% of the faces.
    assert!(
        (fr.accuracy - qr.accuracy).abs() <= 0.003,
        "int8 accuracy {:.2}% is more than 0.3 points from float {:.2}%",
        100.0 * qr.accuracy,
        100.0 * fr.accuracy
    );
    assert!(
        agree >= 0.985,
        "top-1 agreement {:.2}% < 98.5%",
        100.0 * agree
    );
    for (what, accuracy) in [("float", fr.accuracy), ("int8", qr.accuracy)] {
        assert!(
            accuracy >= 0.665,
            "{what} accuracy {:.2}% is under 66.5%",
            100.0 * accuracy
        );
    }
    // The float ONNX reproduces the accuracy reported next to the model.
    let reported: Report =
        serde_json::from_slice(&artifact("fer_cnn.report.json")).expect("report json");
    assert!(
        (reported.accuracy - fr.accuracy).abs() < 1e-9,
        "ONNX accuracy {} differs from the reported {}",
        fr.accuracy,
        reported.accuracy
    );
}
