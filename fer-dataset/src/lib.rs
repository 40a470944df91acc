//! FER-2013 on the host, without any ML framework: loading both Kaggle folder layouts and the
//! original CSV, the deterministic stratified 70/20/10 split and its manifest, and the
//! classification report. Shared by host-trainer (training), edge-cli (evaluation on a Pi) and
//! the cross-crate checks.

pub mod atomic_write;
pub mod composite;
pub mod data;
pub mod jpeg;
pub mod metrics;
pub mod rng;
pub mod safe_read;
pub mod split;
