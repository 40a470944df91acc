//! Shared helpers of the cross-crate checks: where the published artifacts and the data set are,
//! and running the float and QDQ ONNX files with tract.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use edge_runtime::CLASS_COUNT;
use host_trainer::data::{Sample, PIXELS, SIDE};
use host_trainer::split::Manifest;
use tract_onnx::prelude::*;

/// The published artifacts: `MODELS_DIR`, or the workspace's `models/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
}

/// The FER-2013 folder from `FER2013_DIR`; the checks need real images and fail with
/// instructions without them.
pub fn fer_dir() -> PathBuf {
    let dir = std::env::var_os("FER2013_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
            "FER2013_DIR is not set: these checks evaluate the published model on the FER-2013 \
             test split. Download Kaggle's 'FER-2013' folder data set and run \
             `FER2013_DIR=/path/to/fer2013 cargo test`"
        )
        });
    assert!(
        dir.is_dir(),
        "FER2013_DIR={} is not a folder",
        dir.display()
    );
    dir
}

/// The test split named by the published manifest, loaded from the data set.
pub fn test_split() -> Vec<Sample> {
    let manifest = Manifest::read(&models_dir().join("split.json")).expect("models/split.json");
    let ids = manifest.part("test").expect("test part");
    host_trainer::data::load_ids(&fer_dir(), &ids).expect("test split images")
}

/// Reads a published artifact.
pub fn artifact(name: &str) -> Vec<u8> {
    let path = models_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An ONNX model made runnable by tract for batches of `n` images.
pub fn tract_plan(bytes: &[u8], n: usize) -> Result<std::sync::Arc<TypedRunnableModel>> {
    tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact([n, 1, SIDE, SIDE]).into())?
        .into_optimized()?
        .into_runnable()
        .context("tract cannot run the model")
}

/// The float input (pixel/255) of `samples` as a tract tensor.
pub fn float_input(samples: &[Sample]) -> Tensor {
    let v: Vec<f32> = samples
        .iter()
        .flat_map(|s| s.pixels.iter().map(|&p| f32::from(p) / 255.0))
        .collect();
    tract_ndarray::Array4::from_shape_vec((samples.len(), 1, SIDE, SIDE), v)
        .expect("shape")
        .into()
}

/// Runs the float ONNX on `samples` in batches; returns `[n, 7]` scores.
pub fn float_scores(onnx: &[u8], samples: &[Sample], batch: usize) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(samples.len() * CLASS_COUNT);
    let full = tract_plan(onnx, batch)?;
    for chunk in samples.chunks(batch) {
        let plan;
        let p = if chunk.len() == batch {
            &full
        } else {
            plan = tract_plan(onnx, chunk.len())?;
            &plan
        };
        let res = p.run(tvec!(float_input(chunk).into()))?;
        out.extend(res[0].to_plain_array_view::<f32>()?.iter().copied());
    }
    Ok(out)
}

const _: () = assert!(PIXELS == 2304);
