//! Command-line interface: the commands and their arguments, and which code runs each.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::artifacts::model_name;
use crate::commands::detector::DetectorArgs;
use crate::commands::quantize::QuantizeArgs;
use crate::commands::report::ReportArgs;
use crate::commands::train::TrainArgs;
use crate::commands::{data_path, warn_if_unoptimized};

/// Train the paper's FER-2013 CNN, report its metrics, export ONNX and int8.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand: train (same options as `train`).
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (the default command).
    Train(TrainArgs),
    /// Evaluate a trained model on the test split of its manifest; write the report, plots and
    /// the float ONNX next to it.
    Report(ReportArgs),
    /// Quantize a trained model to int8 (edge-runtime's model file) and export its QDQ ONNX:
    /// calibrated on training images, the range method chosen on the validation split.
    Quantize(QuantizeArgs),
    /// Soft targets for a distilling recipe: the mean scores of finished models (teachers) on
    /// every training image and its mirror; prints each teacher's and the ensemble's validation
    /// accuracy.
    Teach(crate::commands::teach::TeachArgs),
    /// Time a training step (batch 40) and batch-1 inference; print images/s.
    Bench(BenchArgs),
    /// Convert an OpenCV LBP cascade (XML) into edge-runtime's face-detector file.
    Cascade(CascadeArgs),
    /// Convert a CNN face detector (YuNet's ONNX) into edge-runtime's int8 detector file,
    /// calibrated on camera-like frames of real FER-2013 training faces and checked against the
    /// float graph on other such frames.
    Detector(DetectorArgs),
    /// Hand a training run over to another session or machine: `pack` its resumable state into
    /// one small file (weights rounded far below a training step; docs/training.md), `unpack`
    /// it into an empty run folder, then `train --resume`.
    #[command(subcommand)]
    Handover(HandoverCommand),
}

#[derive(Subcommand, Debug)]
pub enum HandoverCommand {
    /// Pack the run folder's checkpoints and split manifests into one file.
    Pack {
        /// The run folder (`train --out`), e.g. runs/default.
        run: PathBuf,
        /// The hand-over file to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace the hand-over file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Unpack a hand-over into a run folder that does not hold that run yet.
    Unpack {
        /// The hand-over file.
        file: PathBuf,
        /// The run folder to restore, e.g. runs/default.
        #[arg(long)]
        run: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CascadeArgs {
    /// OpenCV cascade XML (Debian's opencv-data: /usr/share/opencv4/lbpcascades/).
    pub xml: PathBuf,
    /// The cascade file to write.
    #[arg(long, default_value = "models/face_lbp.cascade")]
    pub out: PathBuf,
    /// Replace the cascade file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Timed training steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Timed batch-1 inferences (after 10 warm-up runs).
    #[arg(long, default_value_t = 200)]
    pub inferences: usize,
    /// Batch size of the timed training step (the paper's is 40).
    #[arg(long, default_value_t = 40)]
    pub batch: usize,
    /// Print where one training step spends its time, operation by operation, instead.
    #[arg(long, conflicts_with = "compare")]
    pub profile: bool,
    /// Time steps with burn's layers and with host-trainer's (fast_ops), alternately.
    #[arg(long)]
    pub compare: bool,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Train(args)) => crate::commands::train::run(&args),
        Some(Command::Report(args)) => {
            let data_dir = data_path(&args.model.data)?;
            crate::commands::report::run(
                &data_dir,
                &args.model.out,
                &model_name(&args.model.preset),
                &args.split,
                (!args.quiet, args.force),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Quantize(args)) => {
            let data_dir = data_path(&args.model.data)?;
            if !(0.0..=1.0).contains(&args.min_agreement) {
                bail!("--min-agreement must be between 0 and 1");
            }
            crate::commands::quantize::run(
                &data_dir,
                &args.model.out,
                &model_name(&args.model.preset),
                args.min_agreement,
                args.force,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Teach(args)) => {
            warn_if_unoptimized();
            crate::commands::teach::run(&data_path(&args.data)?, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Cascade(args)) => {
            crate::fsutil::check_overwrite(std::slice::from_ref(&args.out), args.force)?;
            show!("{}", crate::cascade_xml::convert(&args.xml, &args.out)?);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Detector(args)) => {
            show!(
                "{}",
                crate::commands::detector::run(&data_path(&args.data)?, &args)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Bench(args)) => {
            warn_if_unoptimized();
            // Bounded like a recipe's batch, and counts a run can finish (and index) at all.
            for (name, value, max) in [
                ("--batch", args.batch, 4096),
                ("--steps", args.steps, 100_000),
                ("--inferences", args.inferences, 10_000_000),
            ] {
                if !(1..=max).contains(&value) {
                    bail!("{name} is {value}, expected 1 to {max}");
                }
            }
            if args.profile {
                crate::profile::run(args.batch, args.steps)?;
            } else if args.compare {
                crate::bench::compare(args.batch, args.steps)?;
            } else {
                crate::bench::run(args.batch, args.steps, args.inferences)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Handover(HandoverCommand::Pack { run, out, force })) => {
            let (files, bytes) = crate::handover::pack(&run, &out, force)?;
            show!(
                "packed {files} files of {} into {} ({:.1} MB)",
                run.display(),
                out.display(),
                bytes as f64 / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Handover(HandoverCommand::Unpack { file, run })) => {
            let files = crate::handover::unpack(&file, &run)?;
            show!(
                "unpacked {files} files into {}; continue with `train --out {} --resume` and the \
                 run's preset or recipe",
                run.display(),
                run.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => crate::commands::train::run(&cli.train),
    }
}
