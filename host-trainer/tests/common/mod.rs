//! Helpers shared by host-trainer's integration tests: small copies of the real FER-2013 folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[allow(unused_imports)] // each test file uses a subset of the helpers
pub use fer_test_support::first_images;

use edge_runtime::labels::Emotion;

/// Copies `files` into `dest/<split>/<class folder>/`, optionally re-encoded as PNG and with the
/// alternate class spellings.
pub fn copy_layout(
    dest: &Path,
    split: &str,
    files: &[(PathBuf, Emotion)],
    png: bool,
    alt_names: bool,
) {
    for (path, e) in files {
        let class = if alt_names {
            e.alternate_name()
        } else {
            e.name()
        };
        let dir = dest.join(split).join(class);
        std::fs::create_dir_all(&dir).expect("create class dir");
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        if png {
            let img = image::open(path).expect("decode test image");
            img.save(dir.join(format!("{stem}.png")))
                .expect("write png");
        } else {
            std::fs::copy(path, dir.join(path.file_name().expect("name"))).expect("copy jpg");
        }
    }
}

/// A temporary folder removed when dropped.
pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A recipe shipped in `host-trainer/recipes/`, as JSON to edit.
pub fn shipped(name: &str) -> serde_json::Value {
    let path = fer_test_support::package_dir()
        .join("recipes")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("shipped recipe")).expect("json")
}

/// Waits until the file `log` contains `text` (a running host-trainer prints it), or fails when
/// the process ends first or after a generous deadline.
pub fn wait_for(log: &Path, text: &str, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let seen = std::fs::read_to_string(log).unwrap_or_default();
        if seen.contains(text) {
            return;
        }
        if let Some(status) = child.try_wait().expect("poll") {
            panic!("host-trainer ended ({status}) before printing {text:?}:\n{seen}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {text:?} in:\n{seen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
