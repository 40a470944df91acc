//! Test support shared by the workspace's tests (a dev-dependency only): where the FER-2013 data
//! set and the published models are, the first images of each class, and tract plans of an ONNX
//! model. Tests need the real data: without it they fail with instructions, never pass vacuously.

use std::path::PathBuf;

use anyhow::{Context, Result};
use edge_runtime::format::INPUT_SIDE;
use edge_runtime::labels::Emotion;
use tract_onnx::prelude::*;

/// The FER-2013 folder (Kaggle's layout: `train/` and `test/` with one folder per class) from
/// the `FER2013_DIR` environment variable.
///
/// # Panics
/// When `FER2013_DIR` is not set or is not such a folder: the message says what to do.
pub fn fer_dir() -> PathBuf {
    let dir = std::env::var_os("FER2013_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "FER2013_DIR is not set. These tests run on real FER-2013 images: download \
                 Kaggle's 'FER-2013' folder data set (train/ and test/ with one folder per \
                 class) and run `FER2013_DIR=/path/to/fer2013 cargo test`"
            )
        });
    for part in ["train", "test"] {
        assert!(
            dir.join(part).is_dir(),
            "FER2013_DIR={} has no {part}/ folder: expected Kaggle's FER-2013 folder layout",
            dir.display()
        );
    }
    dir
}

/// The folder of the package whose tests are running: `CARGO_MANIFEST_DIR` as cargo sets it when
/// it runs a test, else (a test binary started by hand) this crate's folder. Read at run time, not
/// compiled in: a target folder shared by two checkouts (`.ci/run` keeps one outside the clone)
/// reuses a test binary built in the other checkout when the sources have not changed since, and a
/// compiled-in path would make it read the other checkout's files.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The workspace's root: the parent of every package's folder ([`package_dir`]).
pub fn workspace_dir() -> PathBuf {
    package_dir().join("..")
}

/// The published artifacts: `MODELS_DIR`, or the workspace's `models/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("models"))
}

/// The project's real test photos (`fer-checks/data/photos`: a portrait and three textures,
/// public domain; their README says where they come from).
pub fn photos_dir() -> PathBuf {
    workspace_dir().join("fer-checks/data/photos")
}

/// The first `n` images (sorted by name) of each class of `split` ("train" or "test").
///
/// # Panics
/// When a class folder cannot be listed.
pub fn first_images(split: &str, n: usize) -> Vec<(PathBuf, Emotion)> {
    let root = fer_dir().join(split);
    let mut out = Vec::new();
    for e in Emotion::ALL {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(e.name()))
            .unwrap_or_else(|err| panic!("cannot list {}/{}: {err}", root.display(), e.name()))
            .map(|d| d.expect("dir entry").path())
            .collect();
        files.sort();
        out.extend(files.into_iter().take(n).map(|p| (p, e)));
    }
    out
}

/// An ONNX model (input `[n, 1, 48, 48]`) made runnable by tract for batches of `n` images.
///
/// # Errors
/// A file tract cannot read or run.
pub fn tract_plan(bytes: &[u8], n: usize) -> Result<std::sync::Arc<TypedRunnableModel>> {
    let side = usize::from(INPUT_SIDE);
    tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact([n, 1, side, side]).into())?
        .into_optimized()?
        .into_runnable()
        .context("tract cannot run the model")
}
