//! Shared by the edge-cli integration tests: the real FER-2013 folder.

use std::path::PathBuf;

/// The FER-2013 folder from `FER2013_DIR`; the tests classify real faces and fail with
/// instructions without it.
pub fn fer_dir() -> PathBuf {
    let dir = std::env::var_os("FER2013_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!("FER2013_DIR is not set: these tests classify real FER-2013 faces; download Kaggle's 'FER-2013' folder data set and set FER2013_DIR")
    });
    assert!(
        dir.join("test").is_dir(),
        "{} has no test/ folder",
        dir.display()
    );
    dir
}
