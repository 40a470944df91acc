//! The subcommands of host-trainer: `train` (the whole pipeline), `report`, `quantize` and
//! `teach` (soft targets for distillation).

use std::path::PathBuf;

use anyhow::{Context, Result};

pub mod detector;
pub mod quantize;
pub mod report;
pub mod teach;
pub mod train;

/// The `--data` folder, or what to pass when there is none.
///
/// # Errors
/// No `--data` and no `FER2013_DIR`.
pub fn data_path(arg: &Option<PathBuf>) -> Result<PathBuf> {
    arg.clone().context(
        "no data set given: pass --data <FER-2013 folder or fer2013.csv> or set FER2013_DIR \
         (FER-2013 is on Kaggle: 'Challenges in Representation Learning: Facial Expression \
         Recognition Challenge', or the 'FER-2013' folder data set)",
    )
}

/// Says so when the trainer itself runs without optimization.
pub fn warn_if_unoptimized() {
    if cfg!(debug_assertions) {
        say!(
            "warning: host-trainer was built without --release. Its dependencies (burn's kernels, \
             where the time goes) are still compiled with opt-level 3 by the workspace's dev \
             profile; `cargo run --release -p host-trainer` also optimizes this crate."
        );
    }
}
