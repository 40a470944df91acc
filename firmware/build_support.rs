//! What both firmware build scripts do (included by each with `#[path]`): put the board's
//! memory.x where the linker finds it, and link the published model's weights pre-widened for
//! the Cortex-M7 kernel (`edge_runtime::wide`) next to the program.
use std::path::PathBuf;

/// The published int8 model, relative to a firmware crate's folder.
const MODEL: &str = "../../models/fer_cnn.int8.bin";

/// Writes `memory_x` and `fer_cnn.wide.bin` to OUT_DIR, adds OUT_DIR to the link search path
/// and asks Cargo to rerun when either input changes.
pub fn memory_and_model(memory_x: &[u8]) {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("memory.x"), memory_x).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    let model = std::fs::read(MODEL).unwrap_or_else(|e| panic!("read {MODEL}: {e}"));
    let wide = edge_runtime::wide::companion(&model).unwrap_or_else(|e| panic!("{MODEL}: {e}"));
    std::fs::write(out.join("fer_cnn.wide.bin"), wide).expect("write fer_cnn.wide.bin");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed={MODEL}");
}
