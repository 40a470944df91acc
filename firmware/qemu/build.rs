//! Puts memory.x where the linker finds it, links the embedded model's widened weights, and
//! rebuilds when the model or the golden data the tests embed change.
#[path = "../build_support.rs"]
mod build_support;

fn main() {
    build_support::memory_and_model(include_bytes!("memory.x"));
    println!("cargo:rerun-if-changed=../../models/golden/inputs.bin");
    println!("cargo:rerun-if-changed=../../models/golden/detect_frame.gray");
    println!("cargo:rerun-if-changed=../../models/face_lbp.cascade");
}
