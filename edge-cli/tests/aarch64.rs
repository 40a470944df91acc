//! Rung 4 (Raspberry Pi part): edge-cli cross-built for aarch64-unknown-linux-gnu, run under
//! qemu-aarch64, prints the same logits as the host build for a few hundred real test faces and
//! the golden logits for the golden faces.
//!
//! `.ci/run` cross-builds the binary first (Debian: gcc-aarch64-linux-gnu, qemu-user) and passes
//! its path in `EDGE_CLI_AARCH64`; a nested cargo build here would wait on the outer one's lock.

use fer_test_support::{fer_dir, models_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn classify(cmd: &mut Command, files: &[PathBuf]) -> Vec<serde_json::Value> {
    let out = cmd
        .arg("classify")
        .arg("--json")
        .args(files)
        .output()
        .expect("edge-cli runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn aarch64_build_matches_the_host_bit_for_bit() {
    let Some(arm) = std::env::var_os("EDGE_CLI_AARCH64").map(PathBuf::from) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "EDGE_CLI_AARCH64 is not set in CI: .ci/run must cross-build edge-cli"
        );
        eprintln!(
            "SKIPPED: cross-build edge-cli (`cargo build -p edge-cli --target aarch64-unknown-linux-gnu`) \
             and set EDGE_CLI_AARCH64 to the binary to run this check"
        );
        return;
    };
    assert!(
        arm.is_file(),
        "EDGE_CLI_AARCH64={} is not a file",
        arm.display()
    );
    // 300 test faces spread over the classes.
    let mut files = Vec::new();
    for class in [
        "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
    ] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(fer_dir().join("test").join(class))
            .expect("list")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        files.extend(v.into_iter().take(43));
    }
    let host = classify(&mut Command::new(env!("CARGO_BIN_EXE_edge-cli")), &files);
    let mut qemu = Command::new("qemu-aarch64");
    qemu.env("QEMU_LD_PREFIX", "/usr/aarch64-linux-gnu")
        .arg(&arm);
    let emulated = classify(&mut qemu, &files);
    assert_eq!(host.len(), files.len());
    assert_eq!(emulated.len(), files.len());
    for (h, e) in host.iter().zip(&emulated) {
        assert_eq!(h["logits"], e["logits"], "{}", h["file"]);
        assert_eq!(h["label"], e["label"]);
    }

    // The golden faces give the golden logits on aarch64 too.
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(models_dir().join("golden/logits.json")).expect("logits.json"),
    )
    .expect("json");
    let gfiles: Vec<PathBuf> = golden["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| fer_dir().join(Path::new(f.as_str().expect("path"))))
        .collect();
    let mut qemu = Command::new("qemu-aarch64");
    qemu.env("QEMU_LD_PREFIX", "/usr/aarch64-linux-gnu")
        .arg(&arm);
    let out = classify(&mut qemu, &gfiles);
    for (o, want) in out.iter().zip(golden["logits"].as_array().expect("logits")) {
        assert_eq!(&o["logits"], want, "{}", o["file"]);
    }
    println!(
        "aarch64 under QEMU: {} faces identical to the host, golden logits reproduced",
        files.len()
    );
}
