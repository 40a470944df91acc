//! The `report` step: evaluate a trained model on a split from its manifest, then write the
//! classification report (JSON, Markdown), the confusion-matrix heat map, the training curves and
//! the float ONNX next to the model.

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Module;

use crate::data;
use crate::fsutil::{read_json, write_atomic, write_json};
use crate::metrics::{argmax_rows, Report};
use crate::model::Net;
use crate::split::Manifest;
use crate::training::{evaluate, TrainState};

/// Loads `<out>/<name>.bpk` with the dropout rates of its recipe.
///
/// # Errors
/// Missing or unreadable weights or history.
pub fn load_model(
    out: &Path,
    name: &str,
    device: &burn::tensor::Device,
) -> Result<(Net, TrainState)> {
    let history_path = out.join(format!("{name}.history.json"));
    let state: TrainState = read_json(&history_path).with_context(|| {
        format!(
            "no training history for model '{name}' in {} (train it first)",
            out.display()
        )
    })?;
    let weights = out.join(format!("{name}.bpk"));
    let net = Net::new(device, state.recipe.dropout)
        .try_load_file(&weights)
        .with_context(|| format!("cannot load model weights {}", weights.display()))?;
    Ok((net, state))
}

/// Which weights a finished run kept: its best epoch, or the mean of its last epochs.
pub fn weights_description(state: &TrainState) -> String {
    match (state.kept_average(), state.best_epoch) {
        (Some(a), _) => format!(
            "mean of the weights of epochs {}-{}",
            a.epochs.0, a.epochs.1
        ),
        (None, Some(e)) => format!("best epoch {e}"),
        (None, None) => "no finished epoch".into(),
    }
}

/// Runs the report step for model `name` in `out` on `split` ("test", "validation" or "train").
///
/// # Errors
/// Missing model, manifest or data files; unwritable outputs.
pub fn run(data_dir: &Path, out: &Path, name: &str, split: &str, progress: bool) -> Result<Report> {
    let device = crate::device();
    let (net, state) = load_model(out, name, &device)?;
    let manifest = Manifest::read(&out.join("split.json"))?;
    let ids = manifest.part(split)?;
    let samples = data::load_ids(data_dir, &ids).with_context(|| {
        format!(
            "loading the {split} split listed in {}",
            out.join("split.json").display()
        )
    })?;
    let (loss, _, scores) = evaluate(&net, &samples, &device, progress);
    let predicted = argmax_rows(&scores);
    let report = Report::from_pairs(samples.iter().map(|s| s.label.index()).zip(predicted));

    let title = format!(
        "{name} ({} recipe, {}) on the {split} split ({} images)",
        state.recipe.name,
        weights_description(&state),
        samples.len()
    );
    println!(
        "{title}: accuracy {:.2}%, loss {loss:.4}\n",
        100.0 * report.accuracy
    );
    println!("{}", report.to_text());
    println!("{}", report.confusion_text());

    let suffix = if split == "test" {
        String::new()
    } else {
        format!(".{split}")
    };
    write_json(&out.join(format!("{name}{suffix}.report.json")), &report)?;
    write_atomic(
        &out.join(format!("{name}{suffix}.report.md")),
        report.to_markdown(&title).as_bytes(),
    )?;
    crate::plots::confusion(
        &out.join(format!("{name}{suffix}.confusion.png")),
        &format!(
            "Confusion matrix: {name}, {split} split, accuracy {:.2}%",
            100.0 * report.accuracy
        ),
        &report,
    )?;
    crate::plots::curves(
        &out.join(format!("{name}.curves.png")),
        &format!(
            "{name}: training and validation per epoch ({} recipe)",
            state.recipe.name
        ),
        &state.history,
        state.best_epoch.filter(|_| state.kept_average().is_none()),
        state.averaged.as_ref(),
    )?;
    let doc = format!(
        "FER-2013 expression CNN (Zaidi et al. 2024 architecture), recipe '{}', {}; \
         input pixel/255, output softmax scores over labels",
        state.recipe.name,
        weights_description(&state)
    );
    let onnx = crate::onnx::to_bytes(&net, &doc)?;
    write_atomic(&out.join(format!("{name}.onnx")), &onnx)?;
    eprintln!("wrote {name}{suffix}.report.json/.md, {name}{suffix}.confusion.png, {name}.curves.png, {name}.onnx in {}", out.display());
    Ok(report)
}
