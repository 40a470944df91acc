//! The `quantize` step: calibrate on training images, compare activation-range methods on the
//! validation split, keep the one most faithful to the float model, and write the int8 model
//! file, its QDQ ONNX and a report.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::data;
use crate::fsutil::{write_atomic, write_json};
use crate::quantize::{int8_predictions, quantize, Calibration, RangeMethod};
use crate::split::Manifest;

/// Training images used for calibration (the first ones of the seeded training split).
pub const CALIBRATION_IMAGES: usize = 1000;

#[derive(Serialize)]
struct MethodResult {
    method: RangeMethod,
    validation_accuracy: f64,
    /// Share of validation images the int8 model classifies like the float model.
    validation_agreement: f64,
}

#[derive(Serialize)]
struct QuantReport {
    calibration_images: usize,
    validation_images: usize,
    float_validation_accuracy: f64,
    methods: Vec<MethodResult>,
    chosen: RangeMethod,
    file_bytes: usize,
    weight_bytes: usize,
    arena_bytes: usize,
    macs: usize,
}

/// The activation-range methods compared, in order of preference on a tie.
pub const METHODS: [RangeMethod; 3] = [
    RangeMethod::Percentile {
        low: 0.001,
        high: 99.999,
    },
    RangeMethod::Percentile {
        low: 0.01,
        high: 99.99,
    },
    RangeMethod::MinMax,
];

/// Quantizes model `name` in `out`, writing `<name>.int8.bin`, `<name>.qdq.onnx` and
/// `<name>.quant.json`.
///
/// Each of [`METHODS`] is calibrated on the first [`CALIBRATION_IMAGES`] training images and run
/// by edge-runtime on the validation split; the one whose predictions agree most often with the
/// float model's is kept (the goal is fidelity to the float model; accuracy breaks ties).
///
/// # Errors
/// Missing model, manifest or data; a quantized model edge-runtime rejects.
pub fn run(data_dir: &Path, out: &Path, name: &str) -> Result<()> {
    let device = crate::device();
    let (net, _) = crate::report::load_model(out, name, &device)?;
    let manifest = Manifest::read(&out.join("split.json"))?;
    let calib_ids: Vec<_> = manifest
        .part("train")?
        .into_iter()
        .take(CALIBRATION_IMAGES)
        .collect();
    let calib = data::load_ids(data_dir, &calib_ids).context("loading calibration images")?;
    let val = data::load_ids(data_dir, &manifest.part("validation")?)
        .context("loading the validation split")?;
    let (_, float_acc, scores) = crate::training::evaluate(&net, &val, &device, false);
    let float_pred = crate::metrics::argmax_rows(&scores);
    eprintln!(
        "float model: {:.2}% on {} validation images; calibrating on {} training images",
        100.0 * float_acc,
        val.len(),
        calib.len()
    );
    let calibration = Calibration::collect(&net, &calib, &device);
    let share = |hits: usize| hits as f64 / val.len().max(1) as f64;
    let mut results = Vec::new();
    let mut best: Option<((f64, f64), RangeMethod, crate::quantize::Quantized)> = None;
    for method in METHODS {
        let q = quantize(&net, &calibration.qparams(method))?;
        let pred = int8_predictions(&q.file, &val)?;
        let acc = share(
            pred.iter()
                .zip(&val)
                .filter(|(p, s)| **p == s.label.index())
                .count(),
        );
        let agree = share(pred.iter().zip(&float_pred).filter(|(a, b)| a == b).count());
        eprintln!(
            "int8 with {method:?} ranges: {:.2}% on validation, {:.2}% agreement with float",
            100.0 * acc,
            100.0 * agree
        );
        results.push(MethodResult {
            method,
            validation_accuracy: acc,
            validation_agreement: agree,
        });
        if best.as_ref().is_none_or(|(b, _, _)| (agree, acc) > *b) {
            best = Some(((agree, acc), method, q));
        }
    }
    let (_, chosen, q) = best.context("no quantization method ran")?;
    let model = edge_runtime::Model::from_bytes(&q.file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = QuantReport {
        calibration_images: calibration.images(),
        validation_images: val.len(),
        float_validation_accuracy: float_acc,
        methods: results,
        chosen,
        file_bytes: q.file.len(),
        weight_bytes: model.weight_bytes(),
        arena_bytes: model.arena_size(),
        macs: model.macs(),
    };
    write_atomic(&out.join(format!("{name}.int8.bin")), &q.file)?;
    let qdq = crate::onnx::build_qdq(&net, &q.layers)?;
    write_atomic(
        &out.join(format!("{name}.qdq.onnx")),
        &prost::Message::encode_to_vec(&qdq),
    )?;
    write_json(&out.join(format!("{name}.quant.json")), &report)?;
    eprintln!(
        "chose {chosen:?}; wrote {name}.int8.bin ({} bytes, arena {} bytes, {} MACs), {name}.qdq.onnx, {name}.quant.json",
        report.file_bytes, report.arena_bytes, report.macs
    );
    Ok(())
}
