//! Puts memory.x where the linker finds it and rebuilds when the embedded model changes.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=../../models/fer_cnn.int8.bin");
    println!("cargo:rerun-if-changed=../../models/golden/inputs.bin");
    println!("cargo:rerun-if-changed=../../models/golden/detect_frame.gray");
    println!("cargo:rerun-if-changed=../../models/face_lbp.cascade");
}
