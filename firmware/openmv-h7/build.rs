//! Puts memory.x where the linker finds it, links the embedded model's widened weights, adds
//! defmt's linker script, and rebuilds when the model changes.
#[path = "../build_support.rs"]
mod build_support;

fn main() {
    build_support::memory_and_model(include_bytes!("memory.x"));
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
