//! Run-folder rules of host-trainer: JSON files written atomically (`fer_dataset::atomic_write`),
//! overwrite checks, the run-folder lock, and how a given path is recorded.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Refuses to replace files that are already there unless `force` (`--force`): a command that
/// writes several files checks them all before its first step, so nothing the user had is
/// overwritten by a command that did not ask to.
///
/// # Errors
/// Names the files that exist and the option that allows replacing them.
pub fn check_overwrite(paths: &[std::path::PathBuf], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    let existing: Vec<String> = paths
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{} already exist{}: pass --force to overwrite {}, or choose another --out",
        existing.join(", "),
        if existing.len() == 1 { "s" } else { "" },
        if existing.len() == 1 { "it" } else { "them" }
    )
}

/// The file a training run holds locked in its `--out` folder for as long as it runs.
pub const RUN_LOCK: &str = ".host-trainer.lock";

/// Locks the run folder `dir` for this process (an advisory lock on [`RUN_LOCK`], released by
/// the system when the process ends, however it ends): two runs on one folder would train over
/// each other's checkpoint. The lock file itself is left in place (an empty file).
///
/// # Errors
/// Another process holds the lock, or the lock file cannot be opened.
pub fn lock_run_folder(dir: &Path) -> Result<fs::File> {
    let path = dir.join(RUN_LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the run lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another host-trainer is running in {} (it holds {}): wait for it to end or stop it \
             (Ctrl-C saves its checkpoint) before starting or resuming a run there",
            dir.display(),
            path.display()
        ),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fer_dataset::atomic_write::write_atomic(path, text.as_bytes())
}

/// Reads and parses a JSON file, naming it in any error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fer_dataset::safe_read::read_to_string(path, fer_dataset::safe_read::Kind::Json)?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not valid JSON of the expected shape ({})",
            path.display(),
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("value")
        )
    })
}

/// How a file given on the command line is recorded in a file the run writes (a teacher in the
/// targets file, `init_from` in a history): relative to the working directory when it lies under
/// it, so that what is committed names no machine's folders even when the path was given
/// absolute; otherwise as given.
pub fn recorded_path(arg: &Path) -> String {
    recorded_from(arg, std::env::current_dir().ok().as_deref())
}

fn recorded_from(arg: &Path, cwd: Option<&Path>) -> String {
    let under = |cwd: &Path| -> Option<String> {
        let full = arg.canonicalize().ok()?;
        let rel = full.strip_prefix(cwd.canonicalize().ok()?).ok()?;
        Some(rel.display().to_string())
    };
    cwd.and_then(under)
        .unwrap_or_else(|| arg.display().to_string())
}

/// How a file is recorded in a file written in folder `base` (a run's `init_from` in its history,
/// which lives in the run's folder): relative to `base`, climbing with `..` as needed, so the
/// recorded path is resolved against the file that records it wherever the tools run from. A
/// path that shares no folder with `base` but the root, or that does not exist, is recorded as
/// given.
pub fn relative_to(arg: &Path, base: &Path) -> String {
    let (Ok(full), Ok(base)) = (arg.canonicalize(), base.canonicalize()) else {
        return arg.display().to_string();
    };
    let to: Vec<_> = full.components().collect();
    let from: Vec<_> = base.components().collect();
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        return arg.display().to_string();
    }
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_recorded_relative_to_the_folder_of_the_recording_file() {
        let dir = std::env::temp_dir().join(format!("fer-relative-to-{}", std::process::id()));
        let model = dir.join("models").join("candidates").join("a.bpk");
        let run = dir.join("runs").join("finetune");
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(&model, b"weights").unwrap();
        assert_eq!(relative_to(&model, &run), "../../models/candidates/a.bpk");
        assert_eq!(relative_to(&model, &dir.join("models")), "candidates/a.bpk");
        assert_eq!(
            run.join(relative_to(&model, &run)).canonicalize().unwrap(),
            model.canonicalize().unwrap()
        );
        assert_eq!(relative_to(Path::new("missing.bpk"), &run), "missing.bpk");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_are_recorded_relative_to_the_working_directory() {
        let dir = std::env::temp_dir().join(format!("fer-recorded-path-{}", std::process::id()));
        let model = dir.join("runs").join("a.bpk");
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"weights").unwrap();
        // Given by its absolute path, named from the working directory down.
        assert_eq!(
            recorded_from(&model, Some(&dir)),
            Path::new("runs").join("a.bpk").display().to_string()
        );
        // Outside the working directory, or missing: as given.
        let elsewhere = dir.join("runs");
        assert_eq!(
            recorded_from(&dir.join("b.bpk"), Some(&elsewhere)),
            dir.join("b.bpk").display().to_string()
        );
        assert_eq!(recorded_from(Path::new("x.bpk"), None), "x.bpk");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
