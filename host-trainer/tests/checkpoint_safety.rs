//! A checkpoint is shared data (runs are committed and passed around): what it names stays inside
//! its folder, a folder that cannot be resumed is never trained over, and a damaged file stops
//! the run before its first step.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::*;
use fer_dataset::data::{self, BadImages, Sample};
use host_trainer::checkpoint::Checkpoint;
use host_trainer::recipe::Recipe;
use host_trainer::training::{self, RunOptions};

fn options(resume: bool) -> RunOptions {
    RunOptions {
        checkpoint_every: 0,
        resume,
        init_from: None,
        progress: false,
        stop: Arc::new(AtomicBool::new(false)),
        soft_targets: None,
        raw_train: None,
    }
}

fn samples() -> Vec<Sample> {
    let dir = temp();
    copy_layout(dir.path(), "train", &first_images("train", 6), false, false);
    data::load(dir.path(), BadImages::Fail)
        .expect("load")
        .samples
}

/// A finished one-epoch run in `dir/ckpt`, and the recipe that extends it to two epochs.
fn finished_run(dir: &std::path::Path, samples: &[Sample]) -> (Checkpoint, Recipe) {
    let (train, val) = samples.split_at(30);
    let ckpt = Checkpoint::new(&dir.join("ckpt"));
    let mut recipe = Recipe::v1();
    recipe.epochs = 1;
    recipe.batch_size = 15;
    let device = host_trainer::device();
    training::train(&recipe, train, val, &device, &ckpt, &options(false)).expect("train");
    recipe.epochs = 2;
    (ckpt, recipe)
}

/// The checkpoint's `state.json`, as JSON.
fn read_state(ckpt: &Checkpoint) -> serde_json::Value {
    let bytes = std::fs::read(ckpt.dir.join("state.json")).expect("state");
    serde_json::from_slice(&bytes).expect("json")
}

/// Replaces the checkpoint's `state.json` with `state`.
fn write_state(ckpt: &Checkpoint, state: &serde_json::Value) {
    let bytes = serde_json::to_vec(state).expect("json");
    std::fs::write(ckpt.dir.join("state.json"), bytes).expect("write");
}

fn resume_error(ckpt: &Checkpoint, recipe: &Recipe, samples: &[Sample], resume: bool) -> String {
    let (train, val) = samples.split_at(30);
    let device = host_trainer::device();
    let e = training::train(recipe, train, val, &device, ckpt, &options(resume))
        .err()
        .expect("must be refused");
    format!("{e:#}")
}

#[test]
fn files_named_outside_the_checkpoint_are_neither_read_nor_removed() {
    let samples = samples();
    let dir = temp();
    let (ckpt, recipe) = finished_run(dir.path(), &samples);
    let victim = dir.path().join("victim.bpk");
    std::fs::copy(ckpt.best(), &victim).expect("victim");
    let original = read_state(&ckpt);
    for name in [
        "../victim.bpk".to_string(),
        victim.display().to_string(),
        "sub/model.bpk".to_string(),
        "model.txt".to_string(),
    ] {
        let mut state = original.clone();
        state["files"][0] = serde_json::Value::String(name.clone());
        write_state(&ckpt, &state);
        let e = resume_error(&ckpt, &recipe, &samples, true);
        assert!(
            e.contains("expected a plain .bpk file name inside the checkpoint folder"),
            "{name}: {e}"
        );
        assert!(victim.is_file(), "{name}: the file outside was removed");
    }
    // A link inside the folder that leads out of it is not followed either.
    #[cfg(unix)]
    {
        let mut state = original.clone();
        let link = ckpt.dir.join("model-link.bpk");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        state["files"][0] = serde_json::Value::String("model-link.bpk".into());
        write_state(&ckpt, &state);
        let e = resume_error(&ckpt, &recipe, &samples, true);
        assert!(e.contains("symbolic link"), "{e}");
        assert!(victim.is_file());
    }
}

#[test]
fn a_checkpoint_without_its_state_is_not_trained_over() {
    let samples = samples();
    let dir = temp();
    let (ckpt, recipe) = finished_run(dir.path(), &samples);
    let best = std::fs::read(ckpt.best()).expect("best");
    std::fs::remove_file(ckpt.dir.join("state.json")).expect("rm state");
    for resume in [true, false] {
        let e = resume_error(&ckpt, &recipe, &samples, resume);
        assert!(
            e.contains("no state.json") && e.contains("best.bpk"),
            "resume {resume}: {e}"
        );
    }
    assert_eq!(
        std::fs::read(ckpt.best()).expect("best"),
        best,
        "best.bpk changed"
    );
}

#[test]
fn a_damaged_best_model_stops_the_resume_before_the_first_step() {
    let samples = samples();
    let dir = temp();
    let (ckpt, recipe) = finished_run(dir.path(), &samples);
    let state_before = std::fs::read(ckpt.dir.join("state.json")).expect("state");
    let mut best = std::fs::read(ckpt.best()).expect("best");
    let half = best.len() / 2;
    best.truncate(half);
    std::fs::write(ckpt.best(), &best).expect("damage");
    let e = resume_error(&ckpt, &recipe, &samples, true);
    assert!(e.contains("best.bpk") && e.contains("damaged"), "{e}");
    assert_eq!(
        std::fs::read(ckpt.dir.join("state.json")).expect("state"),
        state_before,
        "the run trained before refusing"
    );
}

#[test]
fn a_batch_past_the_end_of_its_epoch_is_a_damaged_checkpoint() {
    let samples = samples();
    let dir = temp();
    let (ckpt, recipe) = finished_run(dir.path(), &samples);
    let mut state = read_state(&ckpt);
    state["batch"] = 999.into();
    write_state(&ckpt, &state);
    let e = resume_error(&ckpt, &recipe, &samples, true);
    assert!(e.contains("`batch` is 999") && e.contains("damaged"), "{e}");
}

/// Every number a resumed run computes with is checked before the first step: a best epoch
/// after the last one (it made `epoch - best_epoch` wrap around and stop the run at once), a
/// recipe in the state that `--recipe` would refuse, history that does not match the epochs.
#[test]
fn an_edited_state_is_refused_with_the_field_that_does_not_fit() {
    let samples = samples();
    let dir = temp();
    let (ckpt, recipe) = finished_run(dir.path(), &samples);
    let original = read_state(&ckpt);
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 5] = [
        ("`best_epoch` is 99", |s| s["best_epoch"] = 99.into()),
        ("its recipe is not valid", |s| {
            s["recipe"]["batch_size"] = 0.into()
        }),
        ("`epoch` is 7 but `history` has", |s| s["epoch"] = 7.into()),
        ("`averaged.epochs`", |s| {
            s["averaged"] = serde_json::json!({"epochs": [3, 1], "val_loss": 1.0,
                "val_accuracy": 0.5, "chosen": false})
        }),
        ("`train_len` is 0", |s| s["train_len"] = 0.into()),
    ];
    for (expected, edit) in edits {
        let mut state = original.clone();
        edit(&mut state);
        write_state(&ckpt, &state);
        let e = resume_error(&ckpt, &recipe, &samples, true);
        assert!(
            e.contains(expected) && e.contains("state.json"),
            "{expected}: {e}"
        );
    }
}
