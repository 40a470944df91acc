//! The `teach` command: the soft targets a distilling recipe trains towards, from one or more
//! finished models (see [`crate::distill`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::artifacts::load_model;
use crate::distill::{
    accuracy, mean, scores, Target, TeacherSummary, TeacherTargets, TARGETS_FILE,
};
use edge_runtime::labels::CLASS_COUNT;
use fer_dataset::atomic_write::write_atomic;
use fer_dataset::split::Manifest;

#[derive(Args, Debug, Clone)]
pub struct TeachArgs {
    /// FER-2013, as for `train`. Defaults to the FER2013_DIR environment variable.
    #[arg(long, env = "FER2013_DIR")]
    pub data: Option<PathBuf>,
    /// The distilling run's output folder: the targets go to OUT/teacher-targets.json; its
    /// split.json is made here when missing, and must be every teacher's split.
    #[arg(long)]
    pub out: PathBuf,
    /// A teacher: a model's weights (`.bpk`) with its `.history.json` and the `split.json` of its
    /// run beside it. Repeat for an ensemble (the mean of their scores).
    #[arg(long = "teacher", value_name = "FILE.bpk", required = true)]
    pub teachers: Vec<PathBuf>,
    /// Softmax temperature of the targets (the recipe's `distill.temperature`).
    #[arg(long, default_value_t = 4.0)]
    pub temperature: f64,
    /// Seed of the split [default: the seed of OUT/split.json when the folder has one, else
    /// 42]; the teachers must have been trained on the same split.
    #[arg(long, alias = "seed")]
    pub split_seed: Option<u64>,
    /// Skip (and count) unreadable images instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
}

/// A teacher's weights file, split into the folder and model name `load_model` takes, with the
/// split manifest of its run.
struct TeacherFiles {
    arg: PathBuf,
    dir: PathBuf,
    name: String,
    manifest: Manifest,
}

fn teacher_files(arg: &Path) -> Result<TeacherFiles> {
    let name = match (arg.extension(), arg.file_stem()) {
        (Some(ext), Some(stem)) if ext == "bpk" => stem.to_string_lossy().into_owned(),
        _ => bail!(
            "--teacher {}: expected a model's weights file ending in .bpk (e.g. \
             models/fer_cnn.bpk)",
            arg.display()
        ),
    };
    if !arg.is_file() {
        bail!(
            "--teacher {}: no such file (expected a trained model's weights, e.g. \
             models/fer_cnn.bpk)",
            arg.display()
        );
    }
    let dir = arg
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let split = dir.join("split.json");
    if !split.is_file() {
        bail!(
            "--teacher {}: {} is missing; without it nothing shows which images the teacher was \
             trained on (a teacher that saw validation images would leak them to the student)",
            arg.display(),
            split.display()
        );
    }
    let manifest =
        Manifest::read(&split).with_context(|| format!("--teacher {}", arg.display()))?;
    Ok(TeacherFiles {
        arg: arg.to_path_buf(),
        dir,
        name,
        manifest,
    })
}

/// Runs the `teach` command: measures each teacher and their ensemble on the validation split,
/// then writes the targets of the training split.
///
/// # Errors
/// A teacher without its files, trained on another split, or a targets file already in `out`.
pub fn run(data_dir: &Path, args: &TeachArgs) -> Result<()> {
    if !(args.temperature.is_finite() && (0.5..=20.0).contains(&args.temperature)) {
        bail!(
            "--temperature {}: expected a number from 0.5 to 20",
            args.temperature
        );
    }
    let path = args.out.join(TARGETS_FILE);
    if path.exists() {
        bail!(
            "{} already exists (a distilling run may be using it): remove it to write new targets",
            path.display()
        );
    }
    let teachers = args
        .teachers
        .iter()
        .map(|t| teacher_files(t))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create this folder", args.out.display()))?;
    let seed = crate::commands::train::split_seed(
        &args.out,
        args.split_seed,
        crate::commands::train::PUBLISHED_SPLIT_SEED,
    )?;
    let split = crate::commands::train::load_split(
        data_dir,
        &args.out,
        seed,
        args.skip_bad,
        (edge_runtime::normalize::INPUT_RULE, false),
    )?;
    let student = Manifest::read(&args.out.join("split.json"))?;
    for t in &teachers {
        if t.manifest.train != student.train
            || t.manifest.validation != student.validation
            || t.manifest.test != student.test
        {
            bail!(
                "--teacher {} was trained on another split than {} describes: its training \
                 images would be validation or test images of the student",
                t.arg.display(),
                args.out.join("split.json").display()
            );
        }
    }

    let device = crate::device();
    let mut summaries = Vec::new();
    let (mut val_views, mut train_views) = (Vec::new(), Vec::new());
    for t in &teachers {
        let (net, state) = load_model(&t.dir, &t.name, &device)?;
        let plain = scores(&net, &split.validation, false, 1.0, &device);
        let mirrored = scores(&net, &split.validation, true, 1.0, &device);
        let both = mean(&[plain.clone(), mirrored.clone()]);
        let summary = TeacherSummary {
            model: crate::fsutil::recorded_path(&t.arg),
            recipe: state.recipe.name.clone(),
            validation_accuracy: accuracy(&plain, &split.validation),
            validation_accuracy_mirrored: accuracy(&both, &split.validation),
        };
        say!(
            "teacher {} (recipe {}): validation {:.2}%, with its mirror {:.2}%",
            summary.model,
            summary.recipe,
            100.0 * summary.validation_accuracy,
            100.0 * summary.validation_accuracy_mirrored
        );
        summaries.push(summary);
        val_views.extend([plain, mirrored]);
        train_views.push(scores(&net, &split.train, false, args.temperature, &device));
        train_views.push(scores(&net, &split.train, true, args.temperature, &device));
    }
    let ensemble = accuracy(&mean(&val_views), &split.validation);
    say!(
        "ensemble of {} teacher(s), each image and its mirror: validation {:.2}%",
        teachers.len(),
        100.0 * ensemble
    );
    let train_mean = mean(&train_views);
    let targets = split
        .train
        .iter()
        .zip(train_mean.chunks_exact(CLASS_COUNT))
        .map(|(s, p)| {
            let mut row = [0f32; CLASS_COUNT];
            row.copy_from_slice(p);
            Target {
                id: s.id.clone(),
                p: row,
            }
        })
        .collect();
    let file = TeacherTargets {
        temperature: args.temperature,
        teachers: summaries,
        ensemble_validation_accuracy: ensemble,
        targets,
    };
    // Compact: one row per training image.
    write_atomic(&path, &serde_json::to_vec(&file)?)?;
    say!(
        "wrote {} ({} training images, temperature {})",
        path.display(),
        split.train.len(),
        args.temperature
    );
    Ok(())
}
