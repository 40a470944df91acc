//! Helpers shared by the integration tests: the real FER-2013 folder and small copies of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use edge_runtime::labels::Emotion;

/// The FER-2013 folder (Kaggle layout) from `FER2013_DIR`. Tests need real images: without the
/// data set they fail with instructions rather than pass vacuously.
pub fn fer_dir() -> PathBuf {
    let dir = std::env::var_os("FER2013_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "FER2013_DIR is not set. These tests run on real FER-2013 images: download the \
             Kaggle 'FER-2013' folder data set (train/ and test/ with one folder per class) and \
             run `FER2013_DIR=/path/to/fer2013 cargo test`"
            )
        });
    assert!(
        dir.join("train").is_dir(),
        "FER2013_DIR={} has no train/ folder: expected Kaggle's FER-2013 folder layout",
        dir.display()
    );
    dir
}

/// The first `n` images (sorted by name) of each class of `split` ("train" or "test").
pub fn first_images(split: &str, n: usize) -> Vec<(PathBuf, Emotion)> {
    let root = fer_dir().join(split);
    let mut out = Vec::new();
    for e in Emotion::ALL {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(e.name()))
            .unwrap_or_else(|err| panic!("cannot list {}/{}: {err}", root.display(), e.name()))
            .map(|d| d.expect("dir entry").path())
            .collect();
        files.sort();
        out.extend(files.into_iter().take(n).map(|p| (p, e)));
    }
    out
}

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
