//! Commands that write next to a model never replace files that are there unless asked
//! (`--force`): `report`, `quantize` and `cascade` refuse, name the files, and change nothing;
//! the check comes before any data is read.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::*;

fn host_trainer(args: &[&OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(args)
        .output()
        .expect("run host-trainer")
}

/// Every file of `dir`, by name, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn report_and_quantize_refuse_to_replace_a_models_files() {
    let dir = temp();
    let out = dir.path();
    // Stand-ins for a model's outputs: only their names matter, the refusal comes first.
    for name in [
        "fer_cnn.report.json",
        "fer_cnn.curves.png",
        "fer_cnn.onnx",
        "fer_cnn.int8.bin",
        "fer_cnn.qdq.onnx",
    ] {
        std::fs::write(out.join(name), b"the user's file").expect("write");
    }
    let before = snapshot(out);
    let missing_data = out.join("no-data");
    for command in ["report", "quantize"] {
        let run = host_trainer(&[
            command.as_ref(),
            "--data".as_ref(),
            missing_data.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{command}: {stderr}");
        assert!(
            stderr.contains("already exist") && stderr.contains("--force"),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("fer_cnn.onnx") || stderr.contains("fer_cnn.int8.bin"));
        assert!(
            !stderr.contains("no-data"),
            "{command} read the data first: {stderr}"
        );
    }
    assert_eq!(snapshot(out), before, "a file changed");
}

#[test]
fn cascade_refuses_to_replace_a_file_unless_forced() {
    let dir = temp();
    let target = dir.path().join("face.cascade");
    std::fs::write(&target, b"the user's file").expect("write");
    let xml = dir.path().join("cascade.xml");
    std::fs::write(&xml, b"<opencv_storage></opencv_storage>").expect("xml");
    let run = host_trainer(&[
        "cascade".as_ref(),
        xml.as_os_str(),
        "--out".as_ref(),
        target.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("face.cascade already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&target).expect("read"), b"the user's file");
    // With --force the conversion runs (and this XML is refused for what it is, not overwritten).
    let run = host_trainer(&[
        "cascade".as_ref(),
        xml.as_os_str(),
        "--out".as_ref(),
        target.as_os_str(),
        "--force".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(!stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&target).expect("read"), b"the user's file");
}
