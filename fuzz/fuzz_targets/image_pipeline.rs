//! Any byte string given as an image file goes through what `edge-cli classify` does with it —
//! decode (with the size limits and the truncated-JPEG check), gray conversion, face detection
//! with the embedded cascade, the square crop to 48x48, and int8 inference with the published
//! model — and either gets a clear error or classifies every face found: no panic, no
//! out-of-bounds access, no hang.
#![no_main]

use std::sync::OnceLock;

use edge_cli::classified::classify_gray;
use edge_cli::engine::{Engine, EngineKind};
use edge_cli::faces::{Detector, DetectorKind, FaceMode};
use edge_runtime::Model;
use libfuzzer_sys::fuzz_target;

fn model() -> &'static Model<'static> {
    static MODEL: OnceLock<Model<'static>> = OnceLock::new();
    MODEL
        .get_or_init(|| Model::from_bytes(edge_cli::model_file::EMBEDDED).expect("published model"))
}

fn detector() -> &'static Detector {
    static DETECTOR: OnceLock<Detector> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        Detector::new(DetectorKind::Lbp, None, FaceMode::Auto).expect("embedded cascade")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(img) = fer_dataset::safe_read::decode_image(data, "fuzz input") else {
        return;
    };
    let gray = edge_cli::face_input::gray_of(&img);
    let mut engine = Engine::new(model(), EngineKind::Int8, None).expect("int8 engine");
    if let Ok(faces) = classify_gray(&mut engine, detector(), &gray) {
        for f in faces {
            assert!((0.0..=1.0).contains(&f.confidence), "{}", f.confidence);
        }
    }
});
