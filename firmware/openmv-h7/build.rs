//! Puts memory.x where the linker finds it, adds defmt's linker script, and rebuilds when the
//! embedded model changes.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    // The model's weights pre-widened for the Cortex-M7 kernel (edge_runtime::wide), linked
    // next to it.
    let model =
        std::fs::read("../../models/fer_cnn.int8.bin").expect("read models/fer_cnn.int8.bin");
    let wide = edge_runtime::wide::companion(&model)
        .unwrap_or_else(|e| panic!("models/fer_cnn.int8.bin: {e}"));
    std::fs::write(out.join("fer_cnn.wide.bin"), wide).expect("write fer_cnn.wide.bin");

    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=../../models/fer_cnn.int8.bin");
}
