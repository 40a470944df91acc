//! The `report` step: evaluate a trained model on a split from its manifest, then write the
//! classification report (JSON, Markdown), the confusion-matrix heat map, the training curves and
//! the float ONNX next to the model.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;

use crate::artifacts::{load_model, weights_description};
use crate::checkpoint::TrainState;
use crate::evaluate::evaluate;
use crate::fsutil::write_json;
use fer_dataset::atomic_write::write_atomic;
use fer_dataset::data;
use fer_dataset::metrics::{argmax_rows, Report};
use fer_dataset::split::Manifest;

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub model: crate::artifacts::ModelArgs,
    /// Evaluate on this part of the split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Replace the report, confusion matrix, curves and ONNX if they exist.
    #[arg(long)]
    pub force: bool,
}

/// The files [`run`] writes for model `name` in `out` on `split`.
pub fn outputs(out: &Path, name: &str, split: &str) -> Vec<std::path::PathBuf> {
    let suffix = split_suffix(split);
    [
        format!("{name}{suffix}.report.json"),
        format!("{name}{suffix}.report.md"),
        format!("{name}{suffix}.confusion.png"),
        format!("{name}.curves.png"),
        format!("{name}.onnx"),
    ]
    .iter()
    .map(|f| out.join(f))
    .collect()
}

/// The file-name suffix of a split's report: none for the test split.
fn split_suffix(split: &str) -> String {
    if split == "test" {
        String::new()
    } else {
        format!(".{split}")
    }
}

/// Runs the report step for model `name` in `out` on `split` ("test", "validation" or "train").
///
/// # Errors
/// Missing model, manifest or data files; unwritable outputs.
pub fn run(
    data_dir: &Path,
    out: &Path,
    name: &str,
    split: &str,
    (progress, force): (bool, bool),
) -> Result<Report> {
    crate::fsutil::check_overwrite(&outputs(out, name, split), force)?;
    let device = crate::device();
    let (net, state) = load_model(out, name, &device)?;
    let rule = state.recipe.normalize().map_err(|e| anyhow::anyhow!(e))?;
    let manifest = Manifest::read(&out.join("split.json"))?;
    let ids = manifest.part(split)?;
    let samples = data::load_ids_with(data_dir, &ids, rule).with_context(|| {
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
    show!(
        "{title}: accuracy {:.2}%, loss {loss:.4}\n",
        100.0 * report.accuracy
    );
    show!("{}", report.to_text());
    show!("{}", report.confusion_text());

    let suffix = split_suffix(split);
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
    let earlier = earlier_run(&state, out);
    crate::plots::curves(
        &out.join(format!("{name}.curves.png")),
        &match &earlier {
            Some(e) => format!(
                "{name}: training and validation per epoch ({} recipe, from {})",
                state.recipe.name, e.recipe.name
            ),
            None => format!(
                "{name}: training and validation per epoch ({} recipe)",
                state.recipe.name
            ),
        },
        &state.history,
        state.best_epoch.filter(|_| state.kept_average().is_none()),
        state.averaged.as_ref(),
        earlier.as_ref().map(|e| crate::plots::Earlier {
            name: &e.recipe.name,
            history: &e.history,
        }),
    )?;
    let onnx = crate::onnx::float::to_bytes(
        &crate::network::NetworkParams::read(&net)?,
        &crate::artifacts::onnx_doc(&state),
    );
    write_atomic(&out.join(format!("{name}.onnx")), &onnx)?;
    say!("wrote {name}{suffix}.report.json/.md, {name}{suffix}.confusion.png, {name}.curves.png, {name}.onnx in {}", out.display());
    Ok(report)
}

/// The run whose weights this one started from (`init_from`, relative to `out`, the folder of
/// the history that records it), when its history is beside those weights
/// (`<stem>.history.json`): a fine-tune's curves then show both runs. A recorded path that no
/// longer leads to a history gives this run's alone.
fn earlier_run(state: &TrainState, out: &Path) -> Option<TrainState> {
    let weights = out.join(state.init_from.as_deref()?);
    let path = weights.with_extension("history.json");
    if !path.is_file() {
        say!(
            "curves: this run started from {}, whose history {} is not there: plotting this run \
             alone",
            weights.display(),
            path.display()
        );
        return None;
    }
    match crate::fsutil::read_json::<TrainState>(&path) {
        Ok(earlier) => Some(earlier),
        Err(e) => {
            say!("curves: {e:#}: plotting this run alone");
            None
        }
    }
}
