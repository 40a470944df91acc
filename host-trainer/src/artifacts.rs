//! A trained model's files in `--out`: their names, and loading the model back with the recipe
//! it was trained with.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use clap::Args;

use crate::checkpoint::TrainState;
use crate::fsutil::read_json;
use crate::model::Net;

/// Which trained model a command works on.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The data set the split manifest refers to. Defaults to FER2013_DIR.
    #[arg(long, env = "FER2013_DIR")]
    pub data: Option<PathBuf>,
    /// Folder holding the model and `split.json`.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Which model: a preset's (`default`, `paper`, `v1`, `v2`, `v3`) or a recipe's by its `name`
    /// (its files are `fer_cnn_<name>.*`; a run's first part is in `<run>/base`).
    #[arg(long, default_value = "default")]
    pub preset: String,
}

/// File stem of a preset's artifacts: `fer_cnn` for the default recipe, `fer_cnn_paper` for the
/// paper's.
pub fn model_name(preset: &str) -> String {
    if preset == "default" {
        "fer_cnn".into()
    } else {
        format!("fer_cnn_{preset}")
    }
}

/// `<out>/<name><suffix>`, e.g. `artifact(out, "fer_cnn", ".onnx")`.
pub fn artifact(out: &Path, name: &str, suffix: &str) -> PathBuf {
    out.join(format!("{name}{suffix}"))
}

/// Loads `<out>/<name>.bpk` with the dropout rates of its recipe, and its history.
///
/// # Errors
/// Missing or unreadable weights or history.
pub fn load_model(
    out: &Path,
    name: &str,
    device: &burn::tensor::Device,
) -> Result<(Net, TrainState)> {
    let history_path = artifact(out, name, ".history.json");
    if !history_path.exists() {
        bail!(
            "no training history for model '{name}' in {} ({} is missing: train it first)",
            out.display(),
            history_path.display()
        );
    }
    let state: TrainState = read_json(&history_path)
        .with_context(|| format!("{} is not a training history", history_path.display()))?;
    let weights = artifact(out, name, ".bpk");
    fer_dataset::safe_read::check(&weights, fer_dataset::safe_read::Kind::Weights)?;
    let net = Net::new(device, state.recipe.dropout)
        .try_load_file(&weights)
        .with_context(|| format!("cannot load model weights {}", weights.display()))?;
    crate::network::NetworkParams::read(&net)
        .with_context(|| format!("model weights {}", weights.display()))?;
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

/// The description the float ONNX of a finished run carries.
pub fn onnx_doc(state: &TrainState) -> String {
    format!(
        "FER-2013 expression CNN (Zaidi et al. 2024 architecture), recipe '{}', {}; \
         input pixel/255, output softmax scores over labels",
        state.recipe.name,
        weights_description(state)
    )
}
