//! `edge-cli`: expressions of faces in photos and folders with the int8 runtime, and evaluation
//! of an int8 model on a labelled data set. The published model is embedded in the binary.

pub mod annotate;
pub mod bench;
#[cfg(target_os = "linux")]
pub mod camera;
pub mod classified;
pub mod classify;
pub mod engine;
pub mod eval;
pub mod eval_photos;
pub mod face_input;
pub mod faces;
pub mod frame;
pub mod model_file;
pub mod output;
#[cfg(target_os = "linux")]
pub mod serve;
pub mod tracking;
#[cfg(feature = "tract")]
pub mod tract_engine;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use engine::EngineKind;

/// Facial-expression inference with the int8 FER-2013 model.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Cli {
    /// An int8 model file made by `host-trainer quantize` (default: the embedded published model).
    #[arg(long, global = true)]
    pub model: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Classify the face in each image (files or folders).
    Classify(classify::Args),
    /// Accuracy, confusion matrix and per-class report on a labelled data set.
    Eval(eval::Args),
    /// Live classification from a V4L2 camera (USB webcam, Pi camera through libcamera's V4L2 layer).
    #[cfg(target_os = "linux")]
    Camera(camera::Args),
    /// Latency and images/s: the int8 runtime against tract on the float ONNX (batch 1, one thread).
    Bench(bench::Args),
}

/// Runs the parsed command line.
///
/// # Errors
/// A model that cannot be read or is invalid, or a failure of the command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    output::require_stdout()?;
    let given = cli.model.as_deref();
    match &cli.command {
        Command::Classify(a) => {
            engine::check_model_files(given, a.engine == EngineKind::Tract, a.onnx.as_deref())?
        }
        Command::Bench(a) => {
            engine::check_model_files(given, a.engine != Some(EngineKind::Int8), a.onnx.as_deref())?
        }
        #[cfg(target_os = "linux")]
        Command::Camera(a) => {
            engine::check_model_files(given, a.engine == EngineKind::Tract, None)?
        }
        Command::Eval(_) => {}
    }
    let bytes = model_file::load_bytes(cli.model.as_deref())?;
    let model = model_file::parse(&bytes, cli.model.as_deref())?;
    match cli.command {
        Command::Classify(args) => classify::run(&model, &args),
        Command::Eval(args) => eval::run(&model, &args),
        Command::Bench(args) => bench::run(&model, &args),
        #[cfg(target_os = "linux")]
        Command::Camera(args) => camera::run(&model, &args),
    }
}
