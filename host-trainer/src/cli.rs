//! Command-line interface: argument parsing and the top-level flow of each command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use clap::{Args, Parser, Subcommand};

use crate::data::{self, BadImages};
use crate::fsutil::write_json;
use crate::recipe::{Monitor, Recipe};
use crate::split::{self, Manifest};
use crate::training::{self, Checkpoint, Outcome, RunOptions};

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
    Quantize(ModelArgs),
    /// Time a training step (batch 40) and batch-1 inference; print images/s.
    Bench(BenchArgs),
    /// Convert an OpenCV LBP cascade (XML) into edge-runtime's face-detector file.
    Cascade(CascadeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CascadeArgs {
    /// OpenCV cascade XML (Debian's opencv-data: /usr/share/opencv4/lbpcascades/).
    pub xml: PathBuf,
    /// The cascade file to write.
    #[arg(long, default_value = "models/face_lbp.cascade")]
    pub out: PathBuf,
}

/// Which trained model a command works on.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The data set the split manifest refers to. Defaults to FER2013_DIR.
    #[arg(long, env = "FER2013_DIR")]
    pub data: Option<PathBuf>,
    /// Folder holding the model and `split.json`.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Which preset's model: `default`, `paper` or `v2`.
    #[arg(long, default_value = "default")]
    pub preset: String,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Evaluate on this part of the split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
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
    /// Time steps with burn's BatchNorm and Dropout and with host-trainer's, alternately.
    #[arg(long)]
    pub compare: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// FER-2013: Kaggle's folder layout (train/ and test/ with a folder per class) or fer2013.csv.
    /// Defaults to the FER2013_DIR environment variable.
    #[arg(long, env = "FER2013_DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for the model, split manifest, report and plots.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Recipe: `default` (beats the paper at the same size), `paper` (exactly the paper) or `v2`
    /// (stronger augmentation and 120 epochs: the candidate for the next default).
    #[arg(long, default_value = "default")]
    pub preset: String,
    /// Override the recipe's number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override the recipe's early-stopping patience.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Override the recipe's early-stopping monitor.
    #[arg(long, value_enum)]
    pub monitor: Option<Monitor>,
    /// Seed of the split, shuffling, augmentation and initialization.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Use only this many training images (quick experiments and tests); validation and test
    /// splits stay whole.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use only this many validation images.
    #[arg(long)]
    pub limit_val: Option<usize>,
    /// Continue the run whose checkpoint is in <out>/checkpoint-<preset>.
    #[arg(long)]
    pub resume: bool,
    /// Skip (and count) unreadable images instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Save a mid-epoch checkpoint every N batches.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Train(args)) => train(&args),
        Some(Command::Report(args)) => {
            let data_dir = data_path(&args.model.data)?;
            crate::report::run(
                &data_dir,
                &args.model.out,
                &model_name(&args.model.preset),
                &args.split,
                !args.quiet,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Quantize(args)) => {
            let data_dir = data_path(&args.data)?;
            crate::export_int8::run(&data_dir, &args.out, &model_name(&args.preset))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Cascade(args)) => {
            println!("{}", crate::cascade_xml::convert(&args.xml, &args.out)?);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Bench(args)) => {
            warn_if_unoptimized();
            if args.batch == 0 {
                bail!("--batch must be at least 1");
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
        None => train(&cli.train),
    }
}

fn data_path(arg: &Option<PathBuf>) -> Result<PathBuf> {
    arg.clone().context(
        "no data set given: pass --data <FER-2013 folder or fer2013.csv> or set FER2013_DIR \
         (FER-2013 is on Kaggle: 'Challenges in Representation Learning: Facial Expression \
         Recognition Challenge', or the 'FER-2013' folder data set)",
    )
}

fn warn_if_unoptimized() {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: host-trainer was built without --release. Its dependencies (burn's kernels, \
             where the time goes) are still compiled with opt-level 3 by the workspace's dev \
             profile; `cargo run --release -p host-trainer` also optimizes this crate."
        );
    }
}

/// Loads the data set and makes (or checks) the split manifest in `out`.
pub fn load_split(data_dir: &Path, out: &Path, seed: u64, skip_bad: bool) -> Result<split::Split> {
    let started = std::time::Instant::now();
    let bad = if skip_bad {
        BadImages::Skip
    } else {
        BadImages::Fail
    };
    let ds = data::load(data_dir, bad)?;
    eprintln!(
        "loaded {} images from {} ({}) in {:.1} s; {} converted to 48x48 gray; {} skipped",
        ds.samples.len(),
        data_dir.display(),
        ds.source,
        started.elapsed().as_secs_f64(),
        ds.converted,
        ds.skipped.len()
    );
    for s in ds.skipped.iter().take(10) {
        eprintln!("  skipped {s}");
    }
    let source = ds.source.clone();
    let split = split::stratified(ds.samples, seed);
    let manifest = Manifest::new(&split, seed, &source);
    let path = out.join("split.json");
    if path.is_file() {
        let old = Manifest::read(&path)?;
        if old.test != manifest.test || old.train != manifest.train {
            bail!(
                "{} describes a different split (seed {}, {} test files) than this data set with \
                 seed {} gives; refusing to overwrite it: choose another --out",
                path.display(),
                old.seed,
                old.test.len(),
                seed
            );
        }
    } else {
        write_json(&path, &manifest)?;
    }
    eprintln!(
        "split (seed {seed}): {} train, {} validation, {} test",
        split.train.len(),
        split.validation.len(),
        split.test.len()
    );
    Ok(split)
}

/// Fails now, not after the first epoch, when `out` cannot hold the run's files.
fn check_writable(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create this folder", out.display()))?;
    let probe = out.join(format!(".write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "--out {}: cannot write files into this folder",
            out.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn train(args: &TrainArgs) -> Result<ExitCode> {
    warn_if_unoptimized();
    let data_dir = data_path(&args.data)?;
    let mut recipe = Recipe::preset(&args.preset).with_context(|| {
        format!(
            "unknown --preset '{}': expected default, paper or v2",
            args.preset
        )
    })?;
    recipe.seed = args.seed;
    if let Some(e) = args.epochs {
        recipe.epochs = e;
    }
    if let Some(p) = args.patience {
        recipe.patience = p;
    }
    if let Some(m) = args.monitor {
        recipe.monitor = m;
    }
    if recipe.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if recipe.patience == 0 {
        bail!("--patience must be at least 1");
    }
    check_writable(&args.out)?;
    let mut split = load_split(&data_dir, &args.out, args.seed, args.skip_bad)?;
    if let Some(n) = args.limit_train {
        // The split is grouped by class: shuffle before keeping the first n.
        crate::rng::Rng::derive(args.seed, &[3]).shuffle(&mut split.train);
        split.train.truncate(n);
    }
    if let Some(n) = args.limit_val {
        crate::rng::Rng::derive(args.seed, &[4]).shuffle(&mut split.validation);
        split.validation.truncate(n);
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond Ctrl-C: exiting now (the last checkpoint is kept)");
                std::process::exit(130);
            }
            eprintln!("\nCtrl-C: saving a checkpoint after this batch (press again to quit now)");
        });
    }
    let device = crate::device();
    eprintln!(
        "device: {device:?}; recipe: {}",
        serde_json::to_string(&recipe)?
    );
    let ckpt = Checkpoint::new(&args.out.join(format!("checkpoint-{}", recipe.name)));
    let opts = RunOptions {
        checkpoint_every: args.checkpoint_every,
        resume: args.resume,
        progress: !args.quiet,
        stop,
    };
    if !args.resume && ckpt.exists() {
        bail!(
            "{} already holds a checkpoint: pass --resume to continue it, or remove the folder to \
             start over",
            ckpt.dir.display()
        );
    }
    match training::train(
        &recipe,
        &split.train,
        &split.validation,
        &device,
        &ckpt,
        &opts,
    )? {
        Outcome::Interrupted(state) => {
            eprintln!(
                "interrupted at epoch {}, batch {}: checkpoint saved in {}; continue with --resume",
                state.epoch + 1,
                state.batch,
                ckpt.dir.display()
            );
            Ok(ExitCode::from(130))
        }
        Outcome::Finished(model, mut state) => {
            let name = model_name(&recipe.name);
            let record = args.out.join(format!("{name}.bpk"));
            // The best epoch's weights are written first: whatever fails after this, the run's
            // result is on disk (and in the checkpoint's best.bpk).
            model
                .clone()
                .save_file(&record)
                .with_context(|| format!("cannot write {}", record.display()))?;
            let averaged = training::average_last_epochs(
                &ckpt,
                &mut state,
                &split.train,
                &split.validation,
                &device,
                !args.quiet,
            )
            .with_context(|| {
                format!(
                    "the weights of the best epoch are in {}; averaging the last epochs failed",
                    record.display()
                )
            })?;
            if let Some(mean) = averaged {
                mean.save_file(&record)
                    .with_context(|| format!("cannot write {}", record.display()))?;
            }
            write_json(&args.out.join(format!("{name}.history.json")), &state)?;
            eprintln!(
                "done: best epoch {:?} ({:?} = {:?}); weights in {}",
                state.best_epoch,
                recipe.monitor,
                state.best_value,
                record.display()
            );
            crate::report::run(&data_dir, &args.out, &name, "test", !args.quiet)?;
            crate::export_int8::run(&data_dir, &args.out, &name)?;
            Ok(ExitCode::SUCCESS)
        }
    }
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
