//! Shared helpers of the cross-crate checks: the test split and published artifacts, the float
//! ONNX run by tract, the detector's golden frame, and building the firmware.

use std::path::PathBuf;

use anyhow::Result;
use edge_runtime::CLASS_COUNT;
use fer_dataset::data::{Sample, PIXELS, SIDE};
use fer_dataset::split::Manifest;
pub use fer_test_support::{fer_dir, models_dir, photos_dir, tract_plan};
use tract_onnx::prelude::*;

pub mod published;
pub mod sequence;

pub use published::Published;

/// The real texture photos of `fer-checks/data/photos` (CC0) for composite frames' backgrounds.
pub fn textures() -> Vec<Vec<u8>> {
    fer_dataset::composite::textures(&photos_dir()).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The test split named by the published manifest, loaded from the data set.
pub fn test_split() -> Vec<Sample> {
    let manifest = Manifest::read(&models_dir().join("split.json")).expect("models/split.json");
    let ids = manifest.part("test").expect("test part");
    fer_dataset::data::load_ids(&fer_dir(), &ids).expect("test split images")
}

/// The first `n` faces of each class of the published manifest's validation part, as the data
/// set stores them (no light rule applied): the faces measurements choose settings on.
pub fn validation_faces(n: usize) -> Vec<Sample> {
    let manifest = Manifest::read(&models_dir().join("split.json")).expect("models/split.json");
    let ids = manifest.part("validation").expect("validation part");
    let mut picked = Vec::new();
    for class in edge_runtime::Emotion::ALL {
        picked.extend(ids.iter().filter(|(_, e)| *e == class).take(n).cloned());
    }
    fer_dataset::data::load_ids_with(
        &fer_dir(),
        &picked,
        edge_runtime::normalize::Normalize::None,
    )
    .expect("validation images")
}

/// Reads a published artifact.
pub fn artifact(name: &str) -> Vec<u8> {
    let path = models_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The float input (pixel/255) of `samples` as a tract tensor.
pub fn float_input(samples: &[Sample]) -> Tensor {
    let v: Vec<f32> = samples
        .iter()
        .flat_map(|s| s.pixels.iter().map(|&p| f32::from(p) / 255.0))
        .collect();
    tract_ndarray::Array4::from_shape_vec((samples.len(), 1, SIDE, SIDE), v)
        .expect("shape")
        .into()
}

/// Runs the float ONNX on `samples` in batches; returns `[n, 7]` scores.
pub fn float_scores(onnx: &[u8], samples: &[Sample], batch: usize) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(samples.len() * CLASS_COUNT);
    let full = tract_plan(onnx, batch)?;
    for chunk in samples.chunks(batch) {
        let plan;
        let p = if chunk.len() == batch {
            &full
        } else {
            plan = tract_plan(onnx, chunk.len())?;
            &plan
        };
        let res = p.run(tvec!(float_input(chunk).into()))?;
        out.extend(res[0].to_plain_array_view::<f32>()?.iter().copied());
    }
    Ok(out)
}

const _: () = assert!(PIXELS == 2304);

/// The detector's golden frame: scikit-image's public-domain astronaut portrait
/// (`fer-checks/data/photos/astronaut.jpg`, 512x512 gray) resized to 320x320 and cropped to its
/// middle 320x240 rows: a QVGA camera frame with one face. The QEMU firmware embeds the committed copy,
/// `models/golden/detect_frame.gray`.
pub fn detect_frame() -> Vec<u8> {
    let path = photos_dir().join("astronaut.jpg");
    let img = image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_luma8();
    let small = image::imageops::resize(&img, 320, 320, image::imageops::FilterType::Triangle);
    small.as_raw()[40 * 320..280 * 320].to_vec()
}

/// Width and height of [`detect_frame`].
pub const DETECT_FRAME: (usize, usize) = (320, 240);

/// The face pipeline's settings in the detector checks: detected faces only, from 40 pixels
/// (the composite frames' faces are 60-200); the QEMU firmware uses the same.
pub const FACE_SETTINGS: edge_runtime::pipeline::Settings =
    edge_runtime::pipeline::Settings::DEFAULT
        .with_mode(edge_runtime::pipeline::FaceMode::Detect)
        .with_min_face(40);

/// Faces the detector finds in a gray frame with [`FACE_SETTINGS`], largest first.
pub fn detect_faces(
    cascade: &edge_runtime::detect::Cascade<'_>,
    pixels: &[u8],
    size: (usize, usize),
) -> Vec<edge_runtime::detect::Face> {
    detect_faces_with(&FACE_SETTINGS, cascade, pixels, size)
}

/// Faces the detector finds in a gray frame with `settings`' search (minimum size, steps,
/// neighbours), largest first. The buffers hold every hit and face of the frames the checks use
/// (asserted), so the result does not depend on their sizes.
pub fn detect_faces_with(
    settings: &edge_runtime::pipeline::Settings,
    cascade: &edge_runtime::detect::Cascade<'_>,
    pixels: &[u8],
    (w, h): (usize, usize),
) -> Vec<edge_runtime::detect::Face> {
    use edge_runtime::detect::{detect, Face};
    let frame = edge_runtime::preprocess::GrayFrame::new(pixels, w, h).expect("frame");
    let p = settings.detect_params(w, h);
    let mut scratch = vec![0u32; settings.integral_len(cascade, w, h)];
    let mut hits = vec![Face::EMPTY; 4096];
    let mut out = vec![Face::EMPTY; 64];
    let st = detect(cascade, &frame, &p, &mut scratch, &mut hits, &mut out);
    assert_eq!(st.skipped_levels, 0, "the scratch fits every level");
    assert_eq!(st.dropped, 0, "the buffers hold every hit and face");
    out[..st.faces].to_vec()
}

/// The CNN detector run on a gray frame shrunk by `factor` (the input padded to its stride):
/// its plan and the arena holding every map.
fn cnn_run(
    det: &edge_runtime::detect::cnn::file::CnnDetector<'_>,
    pixels: &[u8],
    (w, h): (usize, usize),
    factor: usize,
) -> (edge_runtime::detect::cnn::run::Plan, Vec<i8>) {
    use edge_runtime::detect::cnn::input::{input_size, prepare};
    let frame = edge_runtime::preprocess::GrayFrame::new(pixels, w, h).expect("frame");
    let (iw, ih) = input_size(w, h, factor, det.max_stride()).expect("input size");
    let mut input = vec![0u8; iw * ih];
    prepare(&frame, factor, (iw, ih), &mut input);
    let plan = det.plan(iw, ih).expect("plan");
    let mut arena = vec![0i8; plan.arena_len()];
    det.run(&plan, &input, &mut arena).expect("run");
    (plan, arena)
}

/// What the CNN detector finds in a gray frame shrunk by `factor`, in the shrunk input's
/// pixels, highest score first.
pub fn cnn_detections(
    det: &edge_runtime::detect::cnn::file::CnnDetector<'_>,
    pixels: &[u8],
    size: (usize, usize),
    factor: usize,
    p: &edge_runtime::detect::cnn::decode::DecodeParams,
) -> Vec<edge_runtime::detect::cnn::decode::Detection> {
    use edge_runtime::detect::cnn::decode::{decode, Detection};
    let (plan, arena) = cnn_run(det, pixels, size, factor);
    let mut found = vec![Detection::EMPTY; 64];
    let n = decode(det, &plan, &arena, p, &mut found);
    found.truncate(n);
    found
}

/// The CRC-32 of every head map the CNN detector computes for a gray frame shrunk by `factor`
/// (all its layers, as the QEMU firmware prints it).
pub fn cnn_heads_crc(
    det: &edge_runtime::detect::cnn::file::CnnDetector<'_>,
    pixels: &[u8],
    size: (usize, usize),
    factor: usize,
) -> u32 {
    let (plan, arena) = cnn_run(det, pixels, size, factor);
    let heads: Vec<u8> = (0..det.head_count())
        .flat_map(|k| {
            arena[plan.range(det.head(k).tensor)]
                .iter()
                .map(|&v| v as u8)
        })
        .collect();
    edge_runtime::crc32::crc32(&heads)
}

/// [`cnn_detections`] as boxes in the frame, clamped to it.
pub fn cnn_faces(
    det: &edge_runtime::detect::cnn::file::CnnDetector<'_>,
    pixels: &[u8],
    (w, h): (usize, usize),
    factor: usize,
    p: &edge_runtime::detect::cnn::decode::DecodeParams,
) -> Vec<edge_runtime::detect::Face> {
    cnn_detections(det, pixels, (w, h), factor, p)
        .iter()
        .filter_map(|d| d.in_frame(factor).clamped_face(w, h))
        .collect()
}

/// The whole face pipeline on a gray frame with [`FACE_SETTINGS`]: the largest face's square and
/// its int8 logits, as the firmware computes them.
pub fn pipeline_largest_face(
    cascade: &edge_runtime::detect::Cascade<'_>,
    model: &edge_runtime::Model<'_>,
    pixels: &[u8],
    (w, h): (usize, usize),
) -> Option<(edge_runtime::preprocess::Square, edge_runtime::Logits)> {
    use edge_runtime::detect::Face;
    use edge_runtime::pipeline::{classify, face_squares, Scratch, Source};
    use edge_runtime::preprocess::{GrayFrame, Square};
    let frame = GrayFrame::new(pixels, w, h).expect("frame");
    let mut integral = vec![0u32; FACE_SETTINGS.integral_len(cascade, w, h)];
    let (mut hits, mut faces) = (vec![Face::EMPTY; 2048], vec![Face::EMPTY; 16]);
    let mut scratch = Scratch {
        integral: &mut integral,
        hits: &mut hits,
        faces: &mut faces,
    };
    let mut squares = [(Square::centre(w, h), Source::Centre); 1];
    let found = face_squares(
        &frame,
        Some(cascade),
        &FACE_SETTINGS,
        &mut scratch,
        &mut squares,
    );
    if found.squares == 0 {
        return None;
    }
    let mut arena = vec![0i8; model.arena_size()];
    let logits = classify(model, &frame, squares[0].0, &mut arena).expect("classify");
    Some((squares[0].0, logits))
}

/// A firmware board folder (`qemu`, `openmv-h7`) of the separate `firmware/` Cargo project.
pub fn firmware_dir(board: &str) -> PathBuf {
    fer_test_support::workspace_dir()
        .join("firmware")
        .join(board)
}

/// A target folder of its own for the firmware (other target and profiles), beside the host one.
pub fn firmware_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fer_test_support::workspace_dir().join("target"))
        .join("firmware")
}

/// `cargo <verb> --release --quiet` in a firmware board folder.
pub fn cargo_firmware(board: &str, verb: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO"))
        .args([verb, "--release", "--quiet"])
        .current_dir(firmware_dir(board))
        .env("CARGO_TARGET_DIR", firmware_target())
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs")
}
