//! `edge-cli eval`: accuracy, confusion matrix and per-class report of the int8 model on a
//! labelled data set (Kaggle folder layout or fer2013.csv), or on one part of a split manifest.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use edge_runtime::normalize::{Normalize, INPUT_RULE};
use edge_runtime::Model;
use fer_dataset::data::{self, BadImages, Sample};
use fer_dataset::metrics::Report;
use fer_dataset::split::Manifest;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Labelled images: Kaggle's FER-2013 folder layout (class folders, optionally under train/
    /// and test/) or fer2013.csv.
    #[arg(long)]
    pub data: PathBuf,
    /// Evaluate only the files of one part of this split manifest (e.g. models/split.json).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The part of the manifest: train, validation or test (default: test). Needs --manifest.
    #[arg(long, requires = "manifest")]
    pub split: Option<String>,
    /// Skip unreadable images instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Flip test-time augmentation: each face and its mirror image, logits summed (twice the
    /// inference time).
    #[arg(long)]
    pub mirror: bool,
    /// The light normalization of each face: none, equalize, stretch or local (default: the
    /// published rule, the one the model was trained with; another is for measurements).
    #[arg(long, value_parser = parse_light)]
    pub light: Option<Normalize>,
}

fn parse_light(name: &str) -> Result<Normalize, String> {
    Normalize::from_name(name).ok_or_else(|| {
        format!(
            "'{name}' is no light normalization: expected {}",
            edge_runtime::normalize::ALL.map(|n| n.name()).join(", ")
        )
    })
}

fn load(args: &Args) -> Result<Vec<Sample>> {
    let rule = args.light.unwrap_or(INPUT_RULE);
    match &args.manifest {
        Some(m) => {
            let part = args.split.as_deref().unwrap_or("test");
            let manifest = Manifest::read(m)?;
            let ids = manifest.part(part)?;
            data::load_ids_with(&args.data, &ids, rule)
                .with_context(|| format!("loading the {part} files of {}", m.display()))
        }
        None => {
            let bad = if args.skip_bad {
                BadImages::Skip
            } else {
                BadImages::Fail
            };
            let ds = data::load_with(&args.data, bad, rule)?;
            for s in &ds.skipped {
                crate::warn!("skipped {s}");
            }
            Ok(ds.samples)
        }
    }
}

/// Runs the command.
///
/// # Errors
/// Unreadable data or manifest.
pub fn run(model: &Model<'_>, args: &Args) -> Result<ExitCode> {
    let samples = load(args)?;
    if samples.is_empty() {
        anyhow::bail!("{}: no labelled images found", args.data.display());
    }
    let bar = ProgressBar::new(samples.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "eval [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut arena = vec![0i8; model.arena_size()];
    let mut pairs = Vec::with_capacity(samples.len());
    let started = std::time::Instant::now();
    for s in &samples {
        let failed = |e: edge_runtime::Error| anyhow::anyhow!("{}: {e}", s.id);
        let predicted = if args.mirror {
            model
                .run_mirrored(&s.pixels[..], &mut arena)
                .map_err(failed)?
                .argmax()
        } else {
            model
                .run(&s.pixels[..], &mut arena)
                .map_err(failed)?
                .argmax()
        };
        pairs.push((s.label.index(), predicted.index()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let report = Report::from_pairs(pairs);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "int8 model{} on {} images (light normalization: {}): accuracy {:.2}% ({:.0} \
             images/s)\n",
            if args.mirror {
                " with its mirror images"
            } else {
                ""
            },
            report.total,
            args.light.unwrap_or(INPUT_RULE).name(),
            100.0 * report.accuracy,
            samples.len() as f64 / secs
        )?;
        writeln!(out, "{}", report.to_text())?;
        writeln!(out, "{}", report.confusion_text())?;
    }
    Ok(ExitCode::SUCCESS)
}
