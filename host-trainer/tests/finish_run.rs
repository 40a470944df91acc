//! A recipe with a `finish` (the `default` preset's shape: a run, then a quantization-aware
//! fine-tune of its result) trains both runs in one command, end to end, on a small copy of
//! FER-2013: started from the published weights at a tiny learning rate, so that the int8 model
//! the command ends with agrees with its float model as the published one does.

mod common;

use common::{copy_layout, first_images, shipped};
use serde_json::Value;

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

fn trainer(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(args)
        .output()
        .expect("run host-trainer");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.success(), stderr)
}

#[test]
fn a_recipe_with_a_finish_trains_both_runs_in_one_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("fer");
    copy_layout(&data, "train", &first_images("train", 40), false, false);
    copy_layout(&data, "test", &first_images("test", 10), false, false);

    let mut base = shipped("v3");
    base["name"] = "tiny".into();
    base["epochs"] = 1.into();
    base["average_last"] = 0.into();
    base["learning_rate"] = 1e-6.into();
    let mut finish = shipped("v3-qat3");
    finish["epochs"] = 1.into();
    finish["learning_rate"] = 1e-6.into();
    base["finish"] = finish;
    let recipe = dir.path().join("tiny.json");
    std::fs::write(&recipe, serde_json::to_string(&base).expect("json")).expect("write");
    let published = fer_test_support::models_dir().join("fer_cnn.bpk");
    let out = dir.path().join("out");
    let args = |extra: &[&std::ffi::OsStr]| {
        let mut v: Vec<std::ffi::OsString> = vec![
            "train".into(),
            "--quiet".into(),
            "--data".into(),
            data.clone().into(),
            "--out".into(),
            out.clone().into(),
            "--recipe".into(),
            recipe.clone().into(),
        ];
        v.extend(extra.iter().map(|s| s.to_os_string()));
        v
    };
    let first = args(&["--init-from".as_ref(), published.as_os_str()]);
    let refs: Vec<&std::ffi::OsStr> = first.iter().map(|s| s.as_os_str()).collect();
    let (ok, stderr) = trainer(&refs);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("run 1 of 2") && stderr.contains("run 2 of 2"),
        "{stderr}"
    );

    // The base run: its own folder, from the given weights, no finish of its own.
    let base_dir = out.join("base");
    let base_history = read(&base_dir.join("fer_cnn_tiny.history.json"));
    assert!(base_dir.join("fer_cnn_tiny.bpk").is_file());
    assert_eq!(
        read(&base_dir.join("split.json")),
        read(&out.join("split.json"))
    );
    assert_eq!(
        base_history["init_from"].as_str(),
        Some(published.display().to_string().as_str())
    );
    assert!(base_history["recipe"].get("finish").is_none());
    assert!(base_history["recipe"].get("quant_aware").is_none());
    // The finish: from the base run's weights, quantization-aware, under the recipe's name,
    // and the command's report and int8 model are of it.
    let history = read(&out.join("fer_cnn_tiny.history.json"));
    assert_eq!(history["recipe"]["name"], "tiny");
    assert!(history["recipe"]["quant_aware"].is_object());
    assert!(history["init_from"]
        .as_str()
        .is_some_and(|p| p.ends_with("fer_cnn_tiny.bpk") && p.contains("base")));
    for file in [
        "fer_cnn_tiny.bpk",
        "fer_cnn_tiny.report.json",
        "fer_cnn_tiny.int8.bin",
        "fer_cnn_tiny.quant.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(!base_dir.join("fer_cnn_tiny.report.json").exists());

    // Run again: nothing is overwritten; the finish's checkpoint asks for --resume, and
    // --init-from cannot restart a base run that has ended.
    let again = args(&[]);
    let refs: Vec<&std::ffi::OsStr> = again.iter().map(|s| s.as_os_str()).collect();
    let (ok, stderr) = trainer(&refs);
    assert!(
        !ok && stderr.contains("already holds a checkpoint"),
        "{stderr}"
    );
    let (ok, stderr) = trainer(&first.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert!(
        !ok && stderr.contains("--init-from starts the base run") && stderr.contains("has ended"),
        "{stderr}"
    );
}

/// A full disk under the terminal output does not stop a run: with stdout and stderr on
/// `/dev/full` (every write fails), a short run still ends with its model, report and int8 file
/// and exits 0.
#[cfg(target_os = "linux")]
#[test]
fn a_run_whose_terminal_output_fails_still_ends_with_its_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("fer");
    copy_layout(&data, "train", &first_images("train", 20), false, false);
    let mut recipe = shipped("v3");
    recipe["name"] = "full".into();
    recipe["epochs"] = 1.into();
    recipe["average_last"] = 0.into();
    let path = dir.path().join("full.json");
    std::fs::write(&path, serde_json::to_string(&recipe).expect("json")).expect("write");
    let out = dir.path().join("out");
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(["train", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .arg("--recipe")
        .arg(&path)
        .stdout(full())
        .stderr(full())
        .status()
        .expect("run host-trainer");
    assert!(status.success(), "exit {status}");
    for file in [
        "fer_cnn_full.bpk",
        "fer_cnn_full.report.json",
        "fer_cnn_full.int8.bin",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
}
