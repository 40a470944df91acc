//! A run handed over (`handover pack` → `handover unpack` → `train --resume`) continues where
//! it stopped and ends close to the run it came from; damaged or hostile hand-overs write
//! nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn trainer(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(args)
        .output()
        .expect("run host-trainer");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (out.status.success(), text)
}

/// `host-trainer handover VERB A --FLAG B`.
fn handover(verb: &str, a: &Path, flag: &str, b: &Path) -> (bool, String) {
    trainer(&[
        "handover".as_ref(),
        verb.as_ref(),
        a.as_os_str(),
        flag.as_ref(),
        b.as_os_str(),
    ])
}

fn history(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("fer_cnn_ho.history.json")).expect("history");
    serde_json::from_str(&text).expect("json")
}

#[cfg(target_os = "linux")]
#[test]
fn a_handed_over_run_resumes_and_ends_close_to_the_original() {
    let dir = temp();
    let data = dir.path().join("fer");
    copy_layout(&data, "train", &first_images("train", 20), false, false);
    let mut recipe = shipped("v3");
    recipe["name"] = "ho".into();
    recipe["epochs"] = 4.into();
    recipe["average_last"] = 0.into();
    recipe["patience"] = 10.into();
    let recipe_path = dir.path().join("ho.json");
    std::fs::write(&recipe_path, recipe.to_string()).expect("write recipe");
    let run = dir.path().join("run");
    let train = |out: &Path, resume: bool| -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-trainer"));
        cmd.args(["train", "--quiet", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(out)
            .arg("--recipe")
            .arg(&recipe_path);
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    // Stop the run in its second epoch (SIGTERM saves the checkpoint).
    let log = dir.path().join("first.log");
    let mut first = train(&run, false)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
        .spawn()
        .expect("start");
    wait_for(&log, "epoch  1/4", &mut first);
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .expect("kill");
    assert_eq!(first.wait().expect("wait").code(), Some(130));

    let file = dir.path().join("run.handover");
    let (ok, text) = handover("pack", &run, "--out", &file);
    assert!(ok, "{text}");
    // Packing again over the file needs --force.
    let (ok, text) = handover("pack", &run, "--out", &file);
    assert!(!ok && text.contains("--force"), "{text}");
    let copy = dir.path().join("copy");
    let (ok, text) = handover("unpack", &file, "--run", &copy);
    assert!(ok, "{text}");
    // Unpacking over the run it came from is refused: nothing is overwritten.
    let (ok, text) = handover("unpack", &file, "--run", &run);
    assert!(!ok && text.contains("already exists"), "{text}");

    // Both finish: the original from its checkpoint, the copy from the hand-over.
    for out in [&run, &copy] {
        let status = train(out, true)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("resume");
        assert!(status.success(), "{}", out.display());
    }
    let (a, b) = (history(&run), history(&copy));
    let epochs = |h: &serde_json::Value| h["history"].as_array().expect("epochs").len();
    assert_eq!(epochs(&a), 4);
    assert_eq!(epochs(&b), 4);
    for e in 0..4 {
        let la = a["history"][e]["train_loss"].as_f64().expect("loss");
        let lb = b["history"][e]["train_loss"].as_f64().expect("loss");
        // The epochs before the stop are the same record; after it, the rounded weights and
        // moments change the loss by far less than training does from epoch to epoch.
        eprintln!(
            "epoch {}: train loss {la:.6} original, {lb:.6} handed over",
            e + 1
        );
        assert!(
            (la - lb).abs() <= 0.01 * la,
            "epoch {}: {la} vs {lb}",
            e + 1
        );
    }
}

#[test]
fn damaged_or_hostile_handovers_write_nothing() {
    let dir = temp();
    let run = dir.path().join("run");
    // A hand-over naming a path outside the run folder.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    writeln!(gz, "fer-handover 1").expect("write");
    writeln!(
        gz,
        r#"{{"files":[{{"path":"../escaped.json","len":2,"crc32":0}}]}}"#
    )
    .expect("write");
    gz.write_all(b"{}").expect("write");
    let evil = dir.path().join("evil.handover");
    std::fs::write(&evil, gz.finish().expect("gz")).expect("write");
    let (ok, text) = handover("unpack", &evil, "--run", &run);
    assert!(!ok && text.contains("not a plain relative path"), "{text}");
    assert!(!dir.path().join("escaped.json").exists());
    // Not a hand-over at all, and one cut short.
    let text_file = dir.path().join("notes.handover");
    std::fs::write(&text_file, "hello").expect("write");
    let (ok, text) = handover("unpack", &text_file, "--run", &run);
    assert!(!ok && text.contains("not a run hand-over"), "{text}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    writeln!(gz, "fer-handover 1").expect("write");
    writeln!(
        gz,
        r#"{{"files":[{{"path":"split.json","len":1000,"crc32":0}}]}}"#
    )
    .expect("write");
    gz.write_all(b"short").expect("write");
    let short = dir.path().join("short.handover");
    std::fs::write(&short, gz.finish().expect("gz")).expect("write");
    let (ok, text) = handover("unpack", &short, "--run", &run);
    assert!(!ok && text.contains("damaged or cut short"), "{text}");
    assert!(!run.exists(), "nothing written");
    // Packing a folder without a checkpoint says so.
    std::fs::create_dir(&run).expect("mkdir");
    let (ok, text) = handover("pack", &run, "--out", &dir.path().join("x.handover"));
    assert!(!ok && text.contains("nothing to hand over"), "{text}");
}
