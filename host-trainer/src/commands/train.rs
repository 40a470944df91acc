//! The `train` command: check the settings, load and split the data, train (or resume), keep the
//! best or averaged weights, then report on the test split and quantize to int8.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use clap::Args;

use crate::artifacts::{artifact, model_name};
use crate::checkpoint::Checkpoint;
use crate::commands::{data_path, warn_if_unoptimized};
use crate::distill::{self, TeacherTargets};
use crate::fsutil::write_json;
use crate::recipe::{Monitor, Recipe};
use crate::training::{self, Outcome, RunOptions};
use edge_runtime::normalize::{Normalize, INPUT_RULE};
use fer_dataset::data::{self, BadImages};
use fer_dataset::split::{self, Manifest};

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// FER-2013: Kaggle's folder layout (train/ and test/ with a folder per class) or fer2013.csv.
    /// Defaults to the FER2013_DIR environment variable.
    #[arg(long, env = "FER2013_DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for the model, split manifest, report and plots.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Recipe: `default` (the published model's: 120 epochs with strong augmentation, then 8
    /// quantization-aware ones), `paper` (exactly the paper), or the earlier `v1` (80 epochs,
    /// flips and shifts), `v2`, `v3` (the default without its quantization-aware finish).
    #[arg(long, default_value = "default")]
    pub preset: String,
    /// A recipe of your own instead of a preset: a JSON file with every field of a recipe (the
    /// `recipe` object of a `.history.json` is one). Its `name` names the run's files.
    #[arg(long, value_name = "FILE.json", conflicts_with = "preset")]
    pub recipe: Option<PathBuf>,
    /// Override the recipe's number of epochs (of its first run, when it has a `finish`).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override the recipe's early-stopping patience (of its first run, when it has a `finish`).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Override the recipe's early-stopping monitor (of its first run, when it has a `finish`).
    #[arg(long, value_enum)]
    pub monitor: Option<Monitor>,
    /// Seed of the shuffling, augmentation, Dropout and initialization [default: the recipe's:
    /// 7 for `default`, 42 for the other presets, a `--recipe` file's `seed`]; also of the split
    /// when given, unless --split-seed or OUT/split.json says otherwise.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seed of the train/validation/test split [default: the seed of OUT/split.json when the
    /// folder has one, else --seed's, else 42: the published split]. A run with another --seed
    /// on the published split (seed spread, teachers for distillation): `--seed 7 --split-seed 42`.
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// Use only this many training images (quick experiments and tests); validation and test
    /// splits stay whole.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use only this many validation images.
    #[arg(long)]
    pub limit_val: Option<usize>,
    /// Continue the run whose checkpoint is in OUT/checkpoint-PRESET.
    #[arg(long)]
    pub resume: bool,
    /// Start a new run from these weights (a `.bpk` written by host-trainer, e.g.
    /// models/fer_cnn.bpk) instead of a fresh initialization: fine-tuning a finished model.
    #[arg(long, value_name = "FILE.bpk")]
    pub init_from: Option<PathBuf>,
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

/// The seed of the published split (`models/split.json`).
pub const PUBLISHED_SPLIT_SEED: u64 = 42;

/// The seed of the split a run in `out` uses: `explicit` when given, else the one recorded in
/// `out/split.json` (a folder keeps its split), else `fallback`.
///
/// # Errors
/// An unreadable `split.json`.
pub fn split_seed(out: &Path, explicit: Option<u64>, fallback: u64) -> Result<u64> {
    if let Some(seed) = explicit {
        return Ok(seed);
    }
    let path = out.join("split.json");
    if path.is_file() {
        return Ok(Manifest::read(&path)?.seed);
    }
    Ok(fallback)
}

/// Loads the data set and makes (or checks) the split manifest in `out`: the faces normalized by
/// `rule`, or with `raw` as the data set has them (the caller applies `rule` after its camera
/// degradations).
pub fn load_split(
    data_dir: &Path,
    out: &Path,
    seed: u64,
    skip_bad: bool,
    (rule, raw): (Normalize, bool),
) -> Result<split::Split> {
    let started = std::time::Instant::now();
    let bad = if skip_bad {
        BadImages::Skip
    } else {
        BadImages::Fail
    };
    let ds = data::load_with(data_dir, bad, if raw { Normalize::None } else { rule })?;
    say!(
        "loaded {} images from {} ({}) in {:.1} s; {} converted to 48x48 gray; {} skipped; \
         light normalization: {}",
        ds.samples.len(),
        data_dir.display(),
        ds.source,
        started.elapsed().as_secs_f64(),
        ds.converted,
        ds.skipped.len(),
        rule.name()
    );
    if rule != INPUT_RULE {
        say!(
            "note: this run normalizes faces with '{}', the published rule is '{}': edge-cli, \
             the firmware, report and quantize apply the published one",
            rule.name(),
            INPUT_RULE.name()
        );
    }
    for s in ds.skipped.iter().take(10) {
        say!("  skipped {s}");
    }
    let source = ds.source.clone();
    let split = split::stratified(ds.samples, seed);
    split
        .check_parts(seed)
        .with_context(|| format!("data in {}", data_dir.display()))?;
    keep_manifest(out, &Manifest::new(&split, seed, &source))?;
    say!(
        "split (seed {seed}): {} train, {} validation, {} test",
        split.train.len(),
        split.validation.len(),
        split.test.len()
    );
    Ok(split)
}

/// Writes `manifest` as `out/split.json`, or checks that the one there describes the same split.
fn keep_manifest(out: &Path, manifest: &Manifest) -> Result<()> {
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
                manifest.seed
            );
        }
        Ok(())
    } else {
        write_json(&path, manifest)
    }
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

/// One run of a training command: a recipe, the folder its files go to, and how it starts.
struct Stage {
    recipe: Recipe,
    out: PathBuf,
    ckpt: Checkpoint,
    /// Continue the checkpoint (when there is one).
    resume: bool,
    /// Start from these weights.
    init_from: Option<PathBuf>,
    /// The run was finished by an earlier command (a `finish` recipe's base run): skip it.
    done: bool,
}

impl Stage {
    fn new(recipe: Recipe, out: PathBuf, resume: bool, init_from: Option<PathBuf>) -> Self {
        let ckpt = Checkpoint::new(&out.join(format!("checkpoint-{}", recipe.name)));
        Stage {
            recipe,
            out,
            ckpt,
            resume,
            init_from,
            done: false,
        }
    }

    /// `<out>/<model>.bpk`.
    fn weights(&self) -> PathBuf {
        artifact(&self.out, &model_name(&self.recipe.name), ".bpk")
    }

    /// `<out>/<model>.history.json`, written when the run has ended and its weights are final.
    fn history(&self) -> PathBuf {
        artifact(&self.out, &model_name(&self.recipe.name), ".history.json")
    }
}

/// The runs `recipe` asks for: itself, or, with a `finish`, itself in `<out>/base/` and then the
/// finish from its weights in `<out>` (under the recipe's name). A base run that ended in an
/// earlier command is `done`; `--resume` and `--init-from` belong to the run they can apply to.
fn stages(recipe: &Recipe, args: &TrainArgs) -> Result<Vec<Stage>> {
    let Some(finish) = &recipe.finish else {
        return Ok(vec![Stage::new(
            recipe.clone(),
            args.out.clone(),
            args.resume,
            args.init_from.clone(),
        )]);
    };
    let base_recipe = Recipe {
        finish: None,
        ..recipe.clone()
    };
    let mut base = Stage::new(
        base_recipe,
        args.out.join("base"),
        args.resume,
        args.init_from.clone(),
    );
    base.done = base.history().is_file();
    if base.done && args.init_from.is_some() {
        bail!(
            "--init-from starts the base run of recipe '{}', which has ended ({}): drop              --init-from, or choose another --out",
            recipe.name,
            base.history().display()
        );
    }
    let finish = Recipe {
        name: recipe.name.clone(),
        ..(**finish).clone()
    };
    let mut last = Stage::new(finish, args.out.clone(), args.resume, None);
    if args.init_from.is_some() && last.ckpt.exists() {
        bail!(
            "--init-from starts a new run, but {} holds the checkpoint of recipe '{}''s finishing \
             run: drop --init-from (--resume continues it)",
            last.ckpt.dir.display(),
            recipe.name
        );
    }
    if !last.ckpt.exists() {
        // Nothing to resume: the finish starts from the base run's result.
        last.resume = false;
        last.init_from = Some(base.weights());
    }
    Ok(vec![base, last])
}

/// Fails before the data is read when a run cannot start as asked: a checkpoint that would be
/// overwritten (without `--resume`) or ignored (with `--init-from`), a finished model in its
/// folder that a new run would overwrite, or `--init-from` weights that are not a file (unless an
/// earlier stage writes them).
fn check_start(stage: &Stage, written_before: bool) -> Result<()> {
    if stage.done {
        return Ok(());
    }
    let ckpt = &stage.ckpt;
    let resumes = stage.resume && ckpt.exists();
    if !resumes {
        ckpt.refuse_new_run_over_files()?;
    }
    if let Some(init) = &stage.init_from {
        if resumes {
            bail!(
                "--init-from starts a new run, but --resume would continue the checkpoint in {}: \
                 drop one of them",
                ckpt.dir.display()
            );
        }
        if !written_before && !init.is_file() {
            bail!(
                "--init-from {}: not a file (expected a .bpk written by host-trainer, e.g. \
                 models/fer_cnn.bpk)",
                init.display()
            );
        }
    }
    let finished = stage.weights();
    if !resumes && finished.exists() {
        bail!(
            "{} holds a finished model ({}) and no checkpoint to continue; a new run would \
             overwrite it: choose another --out (to fine-tune that model, pass --init-from {} \
             with another --out)",
            stage.out.display(),
            finished.display(),
            finished.display()
        );
    }
    Ok(())
}

/// The teachers' soft targets of `train` when `recipe` distills: `<out>/teacher-targets.json`,
/// which `host-trainer teach` writes.
fn soft_targets(
    recipe: &Recipe,
    out: &Path,
    train: &[data::Sample],
) -> Result<Option<Arc<distill::SoftTargets>>> {
    let Some(d) = recipe.distill else {
        return Ok(None);
    };
    let path = out.join(distill::TARGETS_FILE);
    if !path.is_file() {
        bail!(
            "recipe '{}' distills from teachers, but {} is missing: write it first with \
             `host-trainer teach --out {} --teacher <model.bpk> [--teacher ...]`",
            recipe.name,
            path.display(),
            out.display()
        );
    }
    let targets = TeacherTargets::read(&path)?;
    say!(
        "distilling from {} teacher(s) (their ensemble: {:.2}% on validation) with weight {} at \
         temperature {}",
        targets.teachers.len(),
        100.0 * targets.ensemble_validation_accuracy,
        d.weight,
        d.temperature
    );
    Ok(Some(Arc::new(targets.aligned(
        train,
        d.temperature,
        &path,
    )?)))
}

/// The recipe a `train` command asks for: a preset or a file, with the command line's overrides
/// (`--seed` for every run of it; `--epochs`, `--patience` and `--monitor` for the main run, not
/// its `finish`).
fn recipe_of(args: &TrainArgs) -> Result<Recipe> {
    let mut recipe = match &args.recipe {
        Some(path) => {
            let recipe: Recipe = crate::fsutil::read_json(path).map_err(|e| {
                let message = format!("{e:#}");
                match crate::recipe::check::nearest_field_hint(&message) {
                    Some(hint) => {
                        anyhow::anyhow!("--recipe {}: {message} ({hint})", path.display())
                    }
                    None => e.context(format!("--recipe {}", path.display())),
                }
            })?;
            recipe
                .check()
                .map_err(|e| anyhow::anyhow!("--recipe {}: {e}", path.display()))?;
            recipe
        }
        None => Recipe::preset(&args.preset).with_context(|| {
            format!(
                "unknown --preset '{}': expected {}",
                args.preset,
                Recipe::PRESETS.join(", ")
            )
        })?,
    };
    if let Some(seed) = args.seed {
        recipe.seed = seed;
        if let Some(finish) = recipe.finish.as_mut() {
            finish.seed = seed;
        }
    }
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
    Ok(recipe)
}

/// Runs the `train` command.
///
/// # Errors
/// Bad settings, data, checkpoint or output folder.
pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    warn_if_unoptimized();
    let data_dir = data_path(&args.data)?;
    let recipe = recipe_of(args)?;
    let seed = recipe.seed;
    check_writable(&args.out)?;
    // Held until the command ends: a second run or resume on this folder is refused.
    let _lock = crate::fsutil::lock_run_folder(&args.out)?;
    let stages = stages(&recipe, args)?;
    for (i, stage) in stages.iter().enumerate() {
        check_start(stage, i > 0 && !stages[i - 1].done)?;
    }
    for stage in &stages {
        check_writable(&stage.out)?;
        for dir in [&stage.out, &stage.ckpt.dir] {
            let n = fer_dataset::atomic_write::remove_stale_temp_files(dir);
            if n > 0 {
                say!(
                    "removed {n} temporary file(s) an interrupted write left in {}",
                    dir.display()
                );
            }
        }
    }
    let split_seed = split_seed(
        &args.out,
        args.split_seed,
        args.seed.unwrap_or(PUBLISHED_SPLIT_SEED),
    )?;
    let rule = recipe.normalize().map_err(|e| anyhow::anyhow!(e))?;
    // Camera degradations act on the raw faces before the light rule: the faces are read raw
    // and the rule applied below, the training faces kept raw beside.
    let camera = stages.iter().any(|s| s.recipe.camera.is_some());
    let mut split = load_split(
        &data_dir,
        &args.out,
        split_seed,
        args.skip_bad,
        (rule, camera),
    )?;
    for stage in &stages {
        // A base run's folder gets the split too: `report --out <out>/base` works there.
        keep_manifest(&stage.out, &Manifest::read(&args.out.join("split.json"))?)?;
    }
    if let Some(n) = args.limit_train {
        // The split is grouped by class: shuffle before keeping the first n.
        fer_dataset::rng::Rng::derive(seed, &[3]).shuffle(&mut split.train);
        split.train.truncate(n);
    }
    if let Some(n) = args.limit_val {
        fer_dataset::rng::Rng::derive(seed, &[4]).shuffle(&mut split.validation);
        split.validation.truncate(n);
    }
    let raw_train = camera.then(|| {
        let raw = split.train.clone();
        for s in split
            .train
            .iter_mut()
            .chain(&mut split.validation)
            .chain(&mut split.test)
        {
            rule.apply(&mut s.pixels[..], data::SIDE, data::SIDE);
        }
        say!(
            "camera degradations on the raw training faces, then the light rule ({}) per batch",
            rule.name()
        );
        Arc::new((raw, rule))
    });

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                say!("\nsecond stop signal: exiting now (the last checkpoint is kept)");
                std::process::exit(130);
            }
            say!(
                "\nstop signal (Ctrl-C, SIGTERM or hang-up): saving a checkpoint after this batch \
                 (Ctrl-C again to quit now)"
            );
        });
    }
    let device = crate::device();
    say!("device: {device:?}");
    for (i, stage) in stages.iter().enumerate() {
        if stage.done {
            say!(
                "run {} of {} ended earlier: its weights are {}",
                i + 1,
                stages.len(),
                stage.weights().display()
            );
            continue;
        }
        if stages.len() > 1 {
            say!(
                "run {} of {} of recipe '{}', in {}",
                i + 1,
                stages.len(),
                recipe.name,
                stage.out.display()
            );
        }
        say!("recipe: {}", serde_json::to_string(&stage.recipe)?);
        let opts = RunOptions {
            checkpoint_every: args.checkpoint_every,
            resume: stage.resume,
            init_from: stage.init_from.clone(),
            progress: !args.quiet,
            stop: stop.clone(),
            soft_targets: soft_targets(&stage.recipe, &args.out, &split.train)?,
            raw_train: raw_train.clone().filter(|_| stage.recipe.camera.is_some()),
        };
        if !train_stage(stage, &split, &device, &opts)? {
            return Ok(ExitCode::from(130));
        }
    }
    let name = model_name(&recipe.name);
    // The run's own outputs: a folder holding a finished model was refused before training.
    crate::commands::report::run(&data_dir, &args.out, &name, "test", (!args.quiet, true))?;
    crate::commands::quantize::run(
        &data_dir,
        &args.out,
        &name,
        crate::commands::quantize::MIN_AGREEMENT,
        true,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Trains one run to its end and writes its weights (the best epoch's, or the mean of the last
/// epochs' when that is better) and history into its folder. `false`: interrupted (Ctrl-C), the
/// checkpoint saved.
fn train_stage(
    stage: &Stage,
    split: &split::Split,
    device: &burn::tensor::Device,
    opts: &RunOptions,
) -> Result<bool> {
    let (model, mut state) = match training::train(
        &stage.recipe,
        &split.train,
        &split.validation,
        device,
        &stage.ckpt,
        opts,
    )? {
        Outcome::Interrupted(state) => {
            say!(
                "interrupted at epoch {}, batch {}: checkpoint saved in {}; continue with --resume",
                state.epoch + 1,
                state.batch,
                stage.ckpt.dir.display()
            );
            return Ok(false);
        }
        Outcome::Finished(model, state) => (model, state),
    };
    let record = stage.weights();
    // The best epoch's weights are written first: whatever fails after this, the run's result
    // is on disk (and in the checkpoint's best.bpk).
    model
        .clone()
        .save_file(&record)
        .with_context(|| format!("cannot write {}", record.display()))?;
    let averaged = crate::averaging::average_last_epochs(
        &stage.ckpt,
        &mut state,
        &split.train,
        &split.validation,
        device,
        opts.progress,
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
    // The history is the run's record; which checkpoint files held it is not.
    let history = crate::checkpoint::TrainState {
        files: None,
        ..state.clone()
    };
    write_json(&stage.history(), &history)?;
    say!(
        "done: best epoch {:?} ({:?} = {:?}); weights in {}",
        state.best_epoch,
        stage.recipe.monitor,
        state.best_value,
        record.display()
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_runtime::labels::Emotion;
    use fer_dataset::data::Sample;

    #[test]
    fn a_folder_keeps_its_split_seed_unless_one_is_given() {
        let dir = tempfile::tempdir().expect("temp dir");
        // No split.json yet: the run's seed.
        assert_eq!(split_seed(dir.path(), None, 7).expect("seed"), 7);
        let samples = (0..30)
            .map(|i| Sample {
                id: format!("train/happy/{i}.png"),
                label: Emotion::ALL[i % 7],
                pixels: Box::new([0; fer_dataset::data::PIXELS]),
            })
            .collect();
        let manifest = Manifest::new(&split::stratified(samples, 42), 42, "folders");
        write_json(&dir.path().join("split.json"), &manifest).expect("write");
        assert_eq!(split_seed(dir.path(), None, 7).expect("seed"), 42);
        assert_eq!(split_seed(dir.path(), Some(3), 7).expect("seed"), 3);
        std::fs::write(dir.path().join("split.json"), "{").expect("write");
        let e = split_seed(dir.path(), None, 7).unwrap_err();
        assert!(format!("{e:#}").contains("split.json"), "{e:#}");
    }
}
