//! `edge-cli eval`: accuracy, confusion matrix and per-class report of the int8 model on a
//! labelled data set (Kaggle folder layout or fer2013.csv), or on one part of a split manifest.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use edge_runtime::align::AlignRule;
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
    /// How each image's face is taken. `whole`: the whole image is the face (FER-2013's 48x48
    /// crops, read as training reads them); `detect`: the largest face the detector finds,
    /// cropped by the pipeline's rule, as `classify` and the camera do (an image without a face
    /// counts as wrong: the end-to-end accuracy on photos); `auto`: images of at most 96x96
    /// whole, larger ones detected. `detect` and `auto` read a folder layout.
    #[arg(long, value_enum, default_value = "whole")]
    pub faces: EvalFaces,
    /// With --faces detect/auto: the margin around the detector's box, percent of its side
    /// (default: the pipeline's rule).
    #[arg(long)]
    pub margin: Option<usize>,
    /// With --faces detect/auto: the square's centre moved down by this percent of the box's
    /// height, negative for up (default: the pipeline's rule).
    #[arg(long, allow_hyphen_values = true)]
    pub shift_down: Option<i32>,
    /// With --faces detect/auto: a face-detector file made by `host-trainer cascade` (default:
    /// the embedded one).
    #[arg(long)]
    pub cascade: Option<PathBuf>,
    /// With --faces detect/auto: the face detector, `cnn` (YuNet-s int8; docs/face-detection.md)
    /// or `lbp` (the LBP cascade). Default: `cnn`, or `lbp` when `--cascade` names a cascade file.
    #[arg(long, value_enum)]
    pub detector: Option<crate::faces::DetectorKind>,
    /// With --faces detect/auto and the CNN detector: crop each face along its eye line,
    /// `SIDE,DOWN` in eye distances (the crop's side, its centre below the eyes' midpoint),
    /// instead of the square around the detector's box (docs/face-detection.md).
    #[arg(long, value_parser = parse_align, allow_hyphen_values = true)]
    pub align: Option<AlignRule>,
}

fn parse_align(text: &str) -> Result<AlignRule, String> {
    let bad = || format!("--align {text:?}: expected SIDE,DOWN in eye distances, e.g. 2.6,0.4");
    let (side, down) = text.split_once(',').ok_or_else(bad)?;
    let q8 = |v: &str| -> Result<i64, String> {
        let f: f64 = v.trim().parse().map_err(|_| bad())?;
        if !f.is_finite() || !(-16.0..=16.0).contains(&f) {
            return Err(bad());
        }
        Ok((f * 256.0).round() as i64)
    };
    let rule = AlignRule {
        side_q8: q8(side)?,
        down_q8: q8(down)?,
    };
    if rule.side_q8 <= 0 {
        return Err(bad());
    }
    Ok(rule)
}

/// How `eval` takes the face of each image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFaces {
    Whole,
    Detect,
    Auto,
}

fn parse_light(name: &str) -> Result<Normalize, String> {
    Normalize::from_name(name).ok_or_else(|| {
        format!(
            "'{name}' is no light normalization: expected {}",
            edge_runtime::normalize::ALL.map(|n| n.name()).join(", ")
        )
    })
}

/// Calls `f` with each labelled face, read one at a time (memory does not grow with the data
/// set); returns how many there were and the skipped images' messages.
fn for_each_sample(args: &Args, f: impl FnMut(Sample) -> Result<()>) -> Result<Vec<String>> {
    let rule = args.light.unwrap_or(INPUT_RULE);
    match &args.manifest {
        Some(m) => {
            let part = args.split.as_deref().unwrap_or("test");
            let manifest = Manifest::read(m)?;
            let ids = manifest.part(part)?;
            data::for_each_id(&args.data, &ids, rule, f)
                .with_context(|| format!("loading the {part} files of {}", m.display()))?;
            Ok(Vec::new())
        }
        None => {
            let bad = if args.skip_bad {
                BadImages::Skip
            } else {
                BadImages::Fail
            };
            data::for_each_with(&args.data, bad, rule, f)
        }
    }
}

/// Runs the command.
///
/// # Errors
/// Unreadable data or manifest.
pub fn run(model: &Model<'_>, args: &Args) -> Result<ExitCode> {
    if args.faces != EvalFaces::Whole {
        if args.manifest.is_some() {
            anyhow::bail!(
                "--faces detect/auto evaluates photos in class folders; a manifest lists \
                 FER-2013's own 48x48 crops: evaluate them with --faces whole"
            );
        }
        let photos = crate::eval_photos::Photos {
            data: &args.data,
            mode: if args.faces == EvalFaces::Auto {
                crate::faces::FaceMode::Auto
            } else {
                crate::faces::FaceMode::Detect
            },
            margin: args.margin,
            shift_down: args.shift_down,
            cascade: args.cascade.as_ref(),
            detector: crate::faces::DetectorKind::chosen(args.detector, args.cascade.as_deref()),
            light: args.light.unwrap_or(INPUT_RULE),
            mirror: args.mirror,
            skip_bad: args.skip_bad,
            align: args.align,
        };
        let (report, per_sec, faces) = crate::eval_photos::evaluate(model, &photos)?;
        print(args, &report, &faces, per_sec)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.margin.is_some()
        || args.shift_down.is_some()
        || args.cascade.is_some()
        || args.detector.is_some()
        || args.align.is_some()
    {
        anyhow::bail!(
            "--margin, --shift-down, --cascade, --detector and --align choose how faces are \
             found and cropped: pass --faces detect (or auto)"
        );
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("eval [{elapsed_precise}] {pos} images {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut arena = vec![0i8; model.arena_size()];
    let mut pairs = Vec::new();
    let started = std::time::Instant::now();
    let skipped = for_each_sample(args, |s| {
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
        Ok(())
    })?;
    bar.finish_and_clear();
    for s in &skipped {
        crate::warn!("skipped {s}");
    }
    if pairs.is_empty() {
        anyhow::bail!("{}: no labelled images found", args.data.display());
    }
    let n = pairs.len();
    let secs = started.elapsed().as_secs_f64();
    let report = Report::from_pairs(pairs);
    print(args, &report, "", n as f64 / secs)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `report` as JSON or as text under a heading; `faces` says how faces were taken (empty
/// for whole images).
///
/// # Errors
/// A failed write to stdout.
fn print(args: &Args, report: &Report, faces: &str, per_sec: f64) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "int8 model{}{faces} on {} images (light normalization: {}): accuracy {:.2}%, macro-F1 \
         {:.3} ({per_sec:.0} images/s)\n",
        if args.mirror {
            " with its mirror images"
        } else {
            ""
        },
        report.total,
        args.light.unwrap_or(INPUT_RULE).name(),
        100.0 * report.accuracy,
        report.macro_avg.f1,
    )?;
    writeln!(out, "{}", report.to_text())?;
    writeln!(out, "{}", report.confusion_text())?;
    Ok(())
}
