//! A run's checkpoint folder: weights, optimizer state and training state, written after every
//! epoch (and every `--checkpoint-every` batches), and how a resumed run is reconciled with the
//! recipe it is resumed under.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::fsutil::{read_json, write_json};
use crate::history::EpochStats;
use crate::model::Net;
use crate::recipe::Recipe;
use fer_dataset::safe_read::{check, Kind};

/// Everything besides the weights that a resumed run needs. Saved as `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub recipe: Recipe,
    /// Epochs fully done (0-based index of the epoch in progress).
    pub epoch: usize,
    /// Batches of that epoch already done (non-zero only after an interruption).
    pub batch: usize,
    /// Running sums of the epoch in progress: loss·n, correct, n.
    pub partial: (f64, usize, usize),
    pub history: Vec<EpochStats>,
    pub best_epoch: Option<usize>,
    pub best_value: Option<f64>,
    pub stopped_early: bool,
    pub finished: bool,
    pub train_seconds: f64,
    /// Number of training images, to refuse resuming on different data.
    pub train_len: usize,
    /// The weight average of the last epochs, when the recipe asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged: Option<Averaged>,
    /// The weights the run started from (`--init-from`), when not a fresh initialization:
    /// relative to the run's folder (the folder of its history file), as `..`-paths when needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<String>,
    /// The checkpoint's weight and optimizer files (named by the save that wrote them, so a
    /// crash between writes never pairs a state with newer or older files). Checkpoints from
    /// before this field use `model.bpk` and `optimizer.bpk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<(String, String)>,
}

impl TrainState {
    /// The state of a run that has not trained yet.
    pub fn new(recipe: &Recipe, train_len: usize) -> Self {
        TrainState {
            recipe: recipe.clone(),
            epoch: 0,
            batch: 0,
            partial: (0.0, 0, 0),
            history: Vec::new(),
            best_epoch: None,
            best_value: None,
            stopped_early: false,
            finished: false,
            train_seconds: 0.0,
            train_len,
            averaged: None,
            init_from: None,
            files: None,
        }
    }

    /// The weight average, when it is the run's result.
    pub fn kept_average(&self) -> Option<&Averaged> {
        self.averaged.as_ref().filter(|a| a.chosen)
    }

    /// Whether the state describes a run that can be continued: its recipe is valid, its
    /// counters agree with each other (epochs against history, batch against the epoch's
    /// length, best and averaged epochs among the finished ones), its numbers are finite and its
    /// file names are plain names of the checkpoint folder. A state is shared data: everything
    /// a resumed run computes from it is checked here, before the first step.
    ///
    /// # Errors
    /// What does not fit, in words (the caller names the file).
    pub fn check(&self) -> Result<(), String> {
        self.recipe
            .check_recorded()
            .map_err(|e| format!("its recipe is not valid: {e}"))?;
        let batches = self.train_len.div_ceil(self.recipe.batch_size).max(1);
        if self.train_len == 0 {
            return Err("`train_len` is 0: a run trains on at least one image".into());
        }
        if self.history.len() != self.epoch {
            return Err(format!(
                "`epoch` is {} but `history` has {} epochs",
                self.epoch,
                self.history.len()
            ));
        }
        if self.batch >= batches {
            return Err(format!(
                "`batch` is {} but an epoch of {} images has {} batches of {}",
                self.batch, self.train_len, batches, self.recipe.batch_size
            ));
        }
        let (loss_sum, correct, seen) = self.partial;
        if !loss_sum.is_finite() || correct > seen || seen > self.train_len {
            return Err(format!(
                "`partial` ({loss_sum}, {correct}, {seen}) is not the running sums of an epoch \
                 of {} images",
                self.train_len
            ));
        }
        if let Some(best) = self.best_epoch {
            if best == 0 || best > self.epoch {
                return Err(format!(
                    "`best_epoch` is {best}, expected one of the {} finished epochs",
                    self.epoch
                ));
            }
        }
        if self.best_value.is_some_and(|v| !v.is_finite()) || !self.train_seconds.is_finite() {
            return Err("`best_value` and `train_seconds` must be finite numbers".into());
        }
        if let Some(a) = &self.averaged {
            let (first, last) = a.epochs;
            if first == 0 || first > last || last > self.epoch {
                return Err(format!(
                    "`averaged.epochs` is ({first}, {last}), expected a range of the {} \
                     finished epochs",
                    self.epoch
                ));
            }
        }
        for (i, e) in self.history.iter().enumerate() {
            if e.epoch != i + 1 {
                return Err(format!(
                    "`history[{i}].epoch` is {}, expected {}",
                    e.epoch,
                    i + 1
                ));
            }
        }
        if let Some((model, optim)) = &self.files {
            for name in [model, optim] {
                if !plain_file_name(name) {
                    return Err(format!(
                        "`files` names '{}', expected a plain .bpk file name inside the \
                         checkpoint folder (letters, digits, '-', '_'; no path)",
                        name.escape_debug()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A name a checkpoint may give its own files: a `.bpk` file name without any path, not hidden.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.ends_with(".bpk")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// The weight average of a run's last epochs, measured on the validation split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Averaged {
    /// First and last averaged epoch (1-based, inclusive).
    pub epochs: (usize, usize),
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Whether it beat the best single epoch (by the recipe's monitor) and is the run's result.
    pub chosen: bool,
}

/// Where a run keeps its checkpoint.
pub struct Checkpoint {
    pub dir: PathBuf,
}

impl Checkpoint {
    pub fn new(dir: &Path) -> Self {
        Checkpoint {
            dir: dir.to_path_buf(),
        }
    }
    pub(crate) fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    /// The weight and optimizer files `state` names (or the older fixed names), inside the
    /// checkpoint folder. A checkpoint is shared data: a name that is not a plain file name of
    /// this folder (a path, `..`, an absolute path) is refused, so that loading it, or removing
    /// it at the next save, never touches a file elsewhere.
    fn files(&self, state: &TrainState) -> Result<(PathBuf, PathBuf)> {
        match &state.files {
            Some((model, optim)) => Ok((self.inside(model)?, self.inside(optim)?)),
            None => Ok((self.dir.join("model.bpk"), self.dir.join("optimizer.bpk"))),
        }
    }

    /// `name` as a file of the checkpoint folder, when it is a plain `.bpk` file name.
    fn inside(&self, name: &str) -> Result<PathBuf> {
        if !plain_file_name(name) {
            bail!(
                "{}: `files` names '{}', expected a plain .bpk file name inside the checkpoint \
                 folder (letters, digits, '-', '_'; no path): refusing to read or remove it",
                self.state().display(),
                name.escape_debug()
            );
        }
        let path = self.dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "{} is a symbolic link: a checkpoint's files must be its own, refusing to \
                 follow it",
                path.display()
            );
        }
        Ok(path)
    }

    /// Refuses to start a new run in a folder that holds checkpoint files: a checkpoint without
    /// `state.json` (it cannot be resumed, and a new run would overwrite its weights), or one
    /// with it when `--resume` was not given.
    ///
    /// # Errors
    /// Names the folder, the files and what to do.
    pub fn refuse_new_run_over_files(&self) -> Result<()> {
        let present = self.files_present();
        if present.is_empty() {
            return Ok(());
        }
        if self.exists() {
            bail!(
                "{} already holds a checkpoint ({}): pass --resume to continue it, or move the \
                 folder away to start over",
                self.dir.display(),
                present.join(", ")
            );
        }
        bail!(
            "{} holds checkpoint files ({}) but no state.json, so it cannot be resumed, and a new \
             run would overwrite them: restore state.json, or move the folder away to start over",
            self.dir.display(),
            present.join(", ")
        )
    }

    /// Loads every weight file the checkpoint keeps besides the latest weights (the best ones,
    /// the weight average, the last epochs' weights), so that a damaged one stops the run before
    /// its first step rather than after hours of training.
    fn check_kept_weights(
        &self,
        state: &TrainState,
        device: &Device,
        recipe: &Recipe,
    ) -> Result<()> {
        let mut kept: Vec<PathBuf> = Vec::new();
        if state.best_epoch.is_some() {
            kept.push(self.best());
        }
        if state.kept_average().is_some() {
            kept.push(self.average());
        }
        kept.extend(
            self.files_present()
                .iter()
                .filter(|n| n.starts_with("epoch-"))
                .map(|n| self.dir.join(n)),
        );
        for path in kept {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                bail!(
                    "{} is a symbolic link, refusing to follow it",
                    path.display()
                );
            }
            check(&path, Kind::Weights).with_context(|| {
                format!("the checkpoint in {} is incomplete", self.dir.display())
            })?;
            let net = Net::new(device, recipe.dropout)
                .try_load_file(&path)
                .with_context(|| {
                    format!(
                        "{} is damaged (cannot load it as this network's weights): the run \
                         could not end with its model; restore the file or start a new run in \
                         another --out",
                        path.display()
                    )
                })?;
            crate::network::NetworkParams::read(&net).with_context(|| {
                format!(
                    "{} cannot be the run's result: restore the file or start a new run in \
                     another --out",
                    path.display()
                )
            })?;
        }
        Ok(())
    }

    /// The checkpoint files (`.bpk`, `state.json`) in the folder, by name, sorted.
    pub fn files_present(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".bpk") || n == "state.json")
            .collect();
        names.sort();
        names
    }

    /// The best weights so far (by the recipe's monitor).
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.bpk")
    }
    /// The weight average of the last epochs (see [`crate::averaging::average_last_epochs`]).
    pub fn average(&self) -> PathBuf {
        self.dir.join("average.bpk")
    }
    /// The weights at the end of epoch `epoch` (1-based), kept for the last epochs of the last
    /// cycle (as many as the recipe averages).
    pub fn epoch_weights(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:03}.bpk"))
    }
    pub fn exists(&self) -> bool {
        self.state().is_file()
    }

    fn create_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create checkpoint folder {}", self.dir.display()))
    }

    /// Saves weights, optimizer state and training state as one set: the weights and optimizer
    /// state go to new files named after this save, then `state.json` is replaced atomically
    /// to name them, then the previous set is removed. A crash at any point leaves a
    /// `state.json` whose files are complete and belong to it.
    pub(crate) fn save(
        &self,
        model: &Net,
        optim: &ModuleOptimizer,
        state: &mut TrainState,
    ) -> Result<()> {
        self.create_dir()?;
        let tag = format!("{:03}-{:05}", state.epoch, state.batch);
        let names = (format!("model-{tag}.bpk"), format!("optimizer-{tag}.bpk"));
        let old = state.files.replace(names.clone());
        let (model_path, optim_path) = self.files(state)?;
        model
            .clone()
            .save_file(&model_path)
            .with_context(|| format!("cannot write {}", model_path.display()))?;
        optim
            .to_record()
            .save(&optim_path)
            .with_context(|| format!("cannot write {}", optim_path.display()))?;
        write_json(&self.state(), state)?;
        let old = old.unwrap_or_else(|| ("model.bpk".into(), "optimizer.bpk".into()));
        for name in [old.0, old.1] {
            if name != names.0 && name != names.1 {
                let path = self.inside(&name)?;
                if path.is_file() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                }
            }
        }
        Ok(())
    }

    /// Writes `model` as the best weights so far.
    pub(crate) fn save_best(&self, model: &Net) -> Result<()> {
        self.create_dir()?;
        model
            .clone()
            .save_file(self.best())
            .with_context(|| format!("cannot write {}", self.best().display()))
    }

    /// Writes the weights `model` ended epoch `epoch` (1-based) with, and removes those of the
    /// epochs before the last `keep`.
    pub(crate) fn save_epoch_weights(&self, model: &Net, epoch: usize, keep: usize) -> Result<()> {
        let path = self.epoch_weights(epoch);
        model
            .clone()
            .save_file(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        for old in 1..(epoch + 1).saturating_sub(keep) {
            let old = self.epoch_weights(old);
            if old.is_file() {
                std::fs::remove_file(&old)
                    .with_context(|| format!("cannot remove {}", old.display()))?;
            }
        }
        Ok(())
    }

    /// The best weights of the run, for inference on `device`.
    pub(crate) fn load_best(&self, device: &Device, recipe: &Recipe) -> Result<Net> {
        check(&self.best(), Kind::Weights)?;
        Net::new(device, recipe.dropout)
            .try_load_file(self.best())
            .with_context(|| format!("cannot load best weights {}", self.best().display()))
    }

    fn load(&self, device: &Device, recipe: &Recipe) -> Result<(Net, ModuleOptimizer, TrainState)> {
        let state: TrainState = read_json(&self.state())?;
        state.check().map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}: the checkpoint is damaged or was edited; restore it, or start a new \
                 run in another --out",
                self.state().display()
            )
        })?;
        let (model_path, optim_path) = self.files(&state)?;
        check(&model_path, Kind::Weights)?;
        check(&optim_path, Kind::Weights)?;
        let model = Net::new(device, recipe.dropout)
            .try_load_file(&model_path)
            .with_context(|| format!("cannot load checkpoint weights {}", model_path.display()))?;
        crate::network::NetworkParams::read(&model).with_context(|| {
            format!(
                "checkpoint weights {}: the run cannot continue from them",
                model_path.display()
            )
        })?;
        let record = OptimizerRecord::load(optim_path.clone())
            .with_context(|| format!("cannot load optimizer state {}", optim_path.display()))?;
        let optim = state.recipe.optimizer.init().load_record(record);
        Ok((model, optim, state))
    }

    /// The model, optimizer and state a run of `recipe` on `train_len` images starts from: the
    /// checkpoint's when `resume` is set and there is one (checked against the data and seed,
    /// its recipe reconciled with `recipe`), else a fresh optimizer and state with a new model,
    /// or the weights in `init_from` (fine-tuning a finished model). The state's recipe is the
    /// one the run continues under.
    ///
    /// # Errors
    /// An unreadable checkpoint or `init_from`, or a checkpoint made on other data, with another
    /// seed, or with more epochs than `recipe` allows.
    pub fn open(
        &self,
        recipe: &Recipe,
        train_len: usize,
        (resume, init_from): (bool, Option<&Path>),
        device: &Device,
    ) -> Result<(Net, ModuleOptimizer, TrainState)> {
        if !(resume && self.exists()) {
            self.refuse_new_run_over_files()?;
            if resume {
                say!(
                    "no checkpoint in {}: starting a new run",
                    self.dir.display()
                );
            }
            let mut state = TrainState::new(recipe, train_len);
            let mut model = Net::new(device, recipe.dropout);
            if let Some(path) = init_from {
                check(path, Kind::Weights)?;
                model = model.try_load_file(path).with_context(|| {
                    format!(
                        "--init-from {}: cannot load these weights (expected a .bpk written by \
                         host-trainer for this network)",
                        path.display()
                    )
                })?;
                crate::network::NetworkParams::read(&model).with_context(|| {
                    format!(
                        "--init-from {}: cannot train from these weights",
                        path.display()
                    )
                })?;
                say!("starting from the weights in {}", path.display());
                // Recorded relative to the run's folder, where its history is written.
                let run_dir = self.dir.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(run_dir).with_context(|| {
                    format!("cannot create the run folder {}", run_dir.display())
                })?;
                state.init_from = Some(crate::fsutil::relative_to(path, run_dir));
            }
            return Ok((model, recipe.optimizer.init(), state));
        }
        let (model, optim, mut state) = self.load(device, recipe)?;
        self.check_kept_weights(&state, device, recipe)?;
        if state.train_len != train_len || state.recipe.seed != recipe.seed {
            bail!(
                "checkpoint in {} was made with {} training images and seed {}, this run has {} and \
                 seed {}: point --out elsewhere or drop --resume",
                self.dir.display(),
                state.train_len,
                state.recipe.seed,
                train_len,
                recipe.seed
            );
        }
        if !state.finished && state.epoch > recipe.epochs {
            bail!(
                "the checkpoint in {} has trained {} epochs, more than --epochs {}: pass \
                 --epochs {} or more to continue it",
                self.dir.display(),
                state.epoch,
                recipe.epochs,
                state.epoch
            );
        }
        if state.finished && state.epoch >= recipe.epochs {
            say!(
                "{} holds a finished run of {} epochs",
                self.dir.display(),
                state.epoch
            );
        } else {
            say!(
                "resuming from {}: epoch {} of {}, batch {}",
                self.dir.display(),
                state.epoch + 1,
                recipe.epochs,
                state.batch
            );
        }
        reconcile(&mut state, recipe, train_len.div_ceil(recipe.batch_size))?;
        Ok((model, optim, state))
    }
}

/// A resumed run keeps its recipe except the epoch count and the patience: a larger --epochs
/// extends a run that ran out of epochs (not one that early stopping ended). The one exception:
/// a recipe that would have trained the finished epochs exactly as they were trained (a preset
/// that grew a further cycle) takes over the run. `batches` is the number of steps per epoch.
pub fn reconcile(state: &mut TrainState, recipe: &Recipe, batches: usize) -> Result<()> {
    if recipe.epochs > state.epoch && !state.stopped_early {
        state.finished = false;
    }
    let adopt = recipe.replays(&state.recipe, &state.history, batches);
    if adopt && state.epoch > 0 {
        if state.recipe != *recipe {
            say!(
                "continuing under the current `{}` recipe, which replays the {} finished epochs \
                 exactly (the checkpoint's was {})",
                recipe.name,
                state.epoch,
                serde_json::to_string(&state.recipe)?
            );
        }
        state.recipe = recipe.clone();
    } else if recipe.epochs > state.recipe.epochs && state.epoch >= state.recipe.epochs {
        // Extending a run that used all its epochs: the finished epochs keep their rates.
        state.recipe.epochs = recipe.epochs;
        let done = state.epoch;
        state.recipe.extend_from(done);
    }
    state.recipe.epochs = recipe.epochs;
    state.recipe.patience = recipe.patience;
    if state.epoch > 0 && state.recipe != *recipe {
        say!(
            "the run continues under its checkpoint's recipe: {}",
            serde_json::to_string(&state.recipe)?
        );
    }
    Ok(())
}
