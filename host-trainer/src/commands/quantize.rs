//! The `quantize` step: calibrate on training images, compare activation-range methods on the
//! validation split, keep the one most faithful to the float model, and write the int8 model
//! file, its QDQ ONNX and a report.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::fsutil::write_json;
use crate::int8_grid::RangeMethod;
use crate::network::NetworkParams;
use crate::quantizer::{int8_predictions, quantize, Calibration};
use edge_runtime::normalize::Normalize;
use fer_dataset::atomic_write::write_atomic;
use fer_dataset::data;
use fer_dataset::split::Manifest;

#[derive(clap::Args, Debug, Clone)]
pub struct QuantizeArgs {
    #[command(flatten)]
    pub model: crate::artifacts::ModelArgs,
    /// Write the int8 model only if it agrees with the float model on at least this share of
    /// the validation images (0-1).
    #[arg(long, default_value_t = MIN_AGREEMENT)]
    pub min_agreement: f64,
    /// Replace the int8 model, QDQ ONNX and quantization report if they exist.
    #[arg(long)]
    pub force: bool,
}

pub use crate::quantizer::CALIBRATION_IMAGES;

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
pub const METHODS: [RangeMethod; 4] = [
    RangeMethod::Percentile {
        low: 0.001,
        high: 99.999,
    },
    RangeMethod::Percentile {
        low: 0.01,
        high: 99.99,
    },
    RangeMethod::MinMax,
    RangeMethod::Mse,
];

/// The calibration images: the first [`CALIBRATION_IMAGES`] of the manifest's training split.
///
/// # Errors
/// A manifest without a training part, or images that cannot be read.
pub fn calibration_images(
    data_dir: &Path,
    manifest: &Manifest,
    rule: Normalize,
) -> Result<Vec<data::Sample>> {
    let ids: Vec<_> = manifest
        .part("train")?
        .into_iter()
        .take(CALIBRATION_IMAGES)
        .collect();
    data::load_ids_with(data_dir, &ids, rule).context("loading calibration images")
}

/// The files [`run`] writes for model `name` in `out`.
pub fn outputs(out: &Path, name: &str) -> Vec<std::path::PathBuf> {
    [".int8.bin", ".qdq.onnx", ".quant.json"]
        .iter()
        .map(|s| out.join(format!("{name}{s}")))
        .collect()
}

/// The least top-1 agreement with the float model on validation that an int8 model must reach
/// to be written (`--min-agreement`): below it the quantization went wrong (for example weights
/// far out of range), and a model that would answer differently from its float twin is refused.
pub const MIN_AGREEMENT: f64 = 0.90;

/// Quantizes model `name` in `out`, writing `<name>.int8.bin`, `<name>.qdq.onnx` and
/// `<name>.quant.json`.
///
/// Each of [`METHODS`] is calibrated on the first [`CALIBRATION_IMAGES`] training images and run
/// by edge-runtime on the validation split; the one whose predictions agree most often with the
/// float model's is kept (the goal is fidelity to the float model; accuracy breaks ties). Nothing
/// is written when that agreement is below `min_agreement`.
///
/// # Errors
/// Missing model, manifest or data; a quantized model edge-runtime rejects; agreement below
/// `min_agreement`.
pub fn run(data_dir: &Path, out: &Path, name: &str, min_agreement: f64, force: bool) -> Result<()> {
    crate::fsutil::check_overwrite(&outputs(out, name), force)?;
    let device = crate::device();
    let (net, state) = crate::artifacts::load_model(out, name, &device)?;
    let rule = state.recipe.normalize().map_err(|e| anyhow::anyhow!(e))?;
    let manifest = Manifest::read(&out.join("split.json"))?;
    let calib = calibration_images(data_dir, &manifest, rule)?;
    let val = data::load_ids_with(data_dir, &manifest.part("validation")?, rule)
        .context("loading the validation split")?;
    let (_, float_acc, scores) = crate::evaluate::evaluate(&net, &val, &device, false);
    let float_pred = fer_dataset::metrics::argmax_rows(&scores);
    say!(
        "float model: {:.2}% on {} validation images; calibrating on {} training images",
        100.0 * float_acc,
        val.len(),
        calib.len()
    );
    let calibration = Calibration::collect(&net, &calib, &device);
    let network = NetworkParams::read(&net)?;
    let share = |hits: usize| hits as f64 / val.len().max(1) as f64;
    let mut results = Vec::new();
    let mut best: Option<((f64, f64), RangeMethod, crate::quantizer::Quantized)> = None;
    for method in METHODS {
        let q = quantize(&network, &calibration.qparams(method))?;
        let pred = int8_predictions(&q.file, &val)?;
        let acc = share(
            pred.iter()
                .zip(&val)
                .filter(|(p, s)| **p == s.label.index())
                .count(),
        );
        let agree = share(pred.iter().zip(&float_pred).filter(|(a, b)| a == b).count());
        say!(
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
    let ((agreement, _), chosen, q) = best.context("no quantization method ran")?;
    if agreement < min_agreement {
        bail!(
            "the int8 model of {name} agrees with the float model on only {:.2}% of the \
             validation images (at best, with {chosen:?} ranges), under the {:.2}% required: \
             not writing it. Check the float model's weights (report); pass --min-agreement to \
             write it anyway",
            100.0 * agreement,
            100.0 * min_agreement
        );
    }
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
    let qdq = crate::onnx::qdq::build(&network, &q.layers)?;
    write_atomic(
        &out.join(format!("{name}.qdq.onnx")),
        &prost::Message::encode_to_vec(&qdq),
    )?;
    write_json(&out.join(format!("{name}.quant.json")), &report)?;
    say!(
        "chose {chosen:?}; wrote {name}.int8.bin ({} bytes, arena {} bytes, {} MACs), {name}.qdq.onnx, {name}.quant.json",
        report.file_bytes, report.arena_bytes, report.macs
    );
    Ok(())
}
