//! A training run stopped by SIGTERM (a service manager, `kill`, a closing terminal) saves its
//! checkpoint as Ctrl-C does, and a second run on the same folder is refused while one runs.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

fn start(data: &Path, out: &Path, recipe: &Path, log: &Path, resume: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-trainer"));
    cmd.args(["train", "--quiet", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .arg("--recipe")
        .arg(recipe)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).expect("log")));
    if resume {
        cmd.arg("--resume");
    }
    cmd.spawn().expect("start host-trainer")
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_saves_the_checkpoint_and_a_second_run_is_locked_out() {
    let dir = temp();
    let data = dir.path().join("fer");
    copy_layout(&data, "train", &first_images("train", 20), false, false);
    let mut recipe = shipped("v3");
    recipe["name"] = "sig".into();
    recipe["epochs"] = 500.into();
    recipe["average_last"] = 0.into();
    recipe["patience"] = 500.into();
    let recipe_path = dir.path().join("sig.json");
    std::fs::write(&recipe_path, recipe.to_string()).expect("write recipe");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let mut run = start(&data, &out, &recipe_path, &log, false);
    wait_for(&log, "/500: train loss", &mut run);

    // A second command on the same folder, fresh or resuming, is refused while the first runs.
    for resume in [true, false] {
        let log2 = dir.path().join(format!("second-{resume}.log"));
        let status = start(&data, &out, &recipe_path, &log2, resume)
            .wait()
            .expect("second run");
        let err = std::fs::read_to_string(&log2).expect("log");
        assert!(!status.success(), "resume={resume}: {err}");
        assert!(err.contains("another host-trainer is running"), "{err}");
    }

    let sent = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = run.wait().expect("wait");
    let err = std::fs::read_to_string(&log).expect("log");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("stop signal") && err.contains("--resume"),
        "{err}"
    );
    let state = out.join("checkpoint-sig").join("state.json");
    assert!(state.is_file(), "no checkpoint after SIGTERM:\n{err}");

    // The lock went with the process: the run resumes where it stopped.
    let log3 = dir.path().join("resume.log");
    let mut again = start(&data, &out, &recipe_path, &log3, true);
    wait_for(&log3, "resuming from", &mut again);
    let _ = again.kill();
    let _ = again.wait();
}
