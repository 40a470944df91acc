//! Rung 4 (Cortex-M7 part): the same int8 model, built for thumbv7em-none-eabihf and run on
//! QEMU's mps2-an500 (a Cortex-M7), gives the golden logits bit for bit.
//! Needs `qemu-system-arm` (Debian: qemu-system-arm) and the thumbv7em-none-eabihf target.

use std::path::Path;
use std::process::Command;

fn have_qemu() -> bool {
    Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn cortex_m7_under_qemu_matches_the_golden_logits() {
    if !have_qemu() {
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-system-arm is missing in CI: .ci/run must install it"
        );
        eprintln!("SKIPPED: install qemu-system-arm (Debian package qemu-system-arm) to run the Cortex-M7 check");
        return;
    }
    let firmware = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/qemu");
    // A target folder of its own, beside the host one (the firmware has other profiles).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("firmware");
    let out = Command::new(env!("CARGO"))
        .args(["run", "--release", "--quiet"])
        .current_dir(&firmware)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "QEMU firmware failed:\n{stdout}\n{stderr}"
    );
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(firmware.join("../../models/golden/logits.json")).expect("logits.json"),
    )
    .expect("json");
    let expected = golden["logits"].as_array().expect("logits");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("golden "))
        .collect();
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (line, want) in lines.iter().zip(expected) {
        let nums: Vec<i64> = line
            .split(':')
            .nth(1)
            .and_then(|r| r.split("->").next())
            .expect("logits")
            .split_whitespace()
            .map(|v| v.parse().expect("int"))
            .collect();
        let want: Vec<i64> = want
            .as_array()
            .expect("row")
            .iter()
            .map(|v| v.as_i64().expect("int"))
            .collect();
        assert_eq!(nums, want, "{line}");
    }
    println!("{stdout}");
}
