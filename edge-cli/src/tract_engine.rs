//! The float reference engine: tract running the float ONNX (`--engine tract`, `bench`). Behind
//! the default feature `tract`: `--no-default-features` builds edge-cli without it.

use anyhow::{Context, Result};
use edge_runtime::INPUT_PIXELS;
use tract_onnx::prelude::*;

/// The published float ONNX, embedded for `--engine tract` and the benchmark.
pub static EMBEDDED_ONNX: &[u8] = include_bytes!("../../models/fer_cnn.onnx");

/// The plan of the float ONNX in `path` (`--onnx`), or of the embedded published one; errors
/// name the file.
///
/// # Errors
/// An unreadable file, or ONNX tract cannot read or run.
pub fn load(path: Option<&std::path::Path>) -> Result<std::sync::Arc<TypedRunnableModel>> {
    match path {
        Some(p) => {
            let bytes = fer_dataset::safe_read::read(p, fer_dataset::safe_read::Kind::Onnx)?;
            plan(&bytes).with_context(|| format!("--onnx {}", p.display()))
        }
        None => plan(EMBEDDED_ONNX).context("the embedded float ONNX"),
    }
}

/// A runnable plan for one 48x48 image, checked once on a blank face: it must answer with the
/// seven class scores as f32 (a QDQ ONNX, whose outputs are each layer's int8 activations, or
/// another model is refused here rather than blamed on every image).
///
/// # Errors
/// ONNX tract cannot read, optimize or run, or a model with other outputs.
pub fn plan(onnx: &[u8]) -> Result<std::sync::Arc<TypedRunnableModel>> {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .context("tract cannot read the ONNX file")?
        .with_input_fact(0, f32::fact([1, 1, 48, 48]).into())?
        .into_optimized()?
        .into_runnable()
        .context("tract cannot run the ONNX model")?;
    let out = plan
        .run(tvec!(input(&[0u8; INPUT_PIXELS])?.into()))
        .context("tract cannot run the ONNX model on a 48x48 face")?;
    let first = out.first().context("the ONNX model has no output")?;
    let classes = edge_runtime::CLASS_COUNT;
    if first.datum_type() != f32::datum_type() || first.len() != classes {
        anyhow::bail!(
            "not the float expression model: its first output is {:?} with {} values, expected \
             the {classes} class scores as f32 (a QDQ ONNX is for the per-layer checks, not for \
             --engine tract)",
            first.datum_type(),
            first.len()
        );
    }
    Ok(plan)
}

/// The float input of one face: pixel / 255 as `[1, 1, 48, 48]`.
///
/// # Errors
/// A face that is not 48x48 pixels.
pub fn input(face: &[u8]) -> Result<Tensor> {
    anyhow::ensure!(
        face.len() == INPUT_PIXELS,
        "face has {} pixels, expected {INPUT_PIXELS}",
        face.len()
    );
    let v: Vec<f32> = face.iter().map(|&p| f32::from(p) / 255.0).collect();
    Tensor::from_shape(&[1, 1, 48, 48], &v)
}
