//! The image fuzzer's seeds (`fuzz/seeds/image_pipeline`): a face region of the golden QVGA
//! frame in each format the decoder reads, small so the fuzzer mutates them quickly, and
//! classified like any user's file. `WRITE_FUZZ_SEED=1 cargo test -p edge-cli --test
//! fuzz_seeds` rewrites them.

use edge_cli::classified::classify_gray;
use edge_cli::engine::{Engine, EngineKind};
use edge_cli::face_input::gray_of;
use edge_cli::faces::{Detector, DetectorKind, FaceMode};

/// 96x96 pixels of the golden frame (320x240 gray) around its face, at (96, 56).
fn face_region() -> image::GrayImage {
    let frame = include_bytes!("../../models/golden/detect_frame.gray");
    image::GrayImage::from_fn(96, 96, |x, y| {
        image::Luma([frame[(56 + y as usize) * 320 + 96 + x as usize]])
    })
}

#[test]
fn image_fuzz_seeds_decode_and_show_a_face() {
    let dir = fer_test_support::workspace_dir().join("fuzz/seeds/image_pipeline");
    let region = image::DynamicImage::ImageLuma8(face_region());
    let model = edge_runtime::Model::from_bytes(edge_cli::model_file::EMBEDDED).expect("model");
    let detector = Detector::new(DetectorKind::Lbp, None, FaceMode::Auto).expect("cascade");
    for (name, format) in [
        ("face.png", image::ImageFormat::Png),
        ("face.jpg", image::ImageFormat::Jpeg),
        ("face.bmp", image::ImageFormat::Bmp),
        ("face.gif", image::ImageFormat::Gif),
        ("face.pgm", image::ImageFormat::Pnm),
    ] {
        let path = dir.join(name);
        if std::env::var_os("WRITE_FUZZ_SEED").is_some() {
            std::fs::create_dir_all(&dir).expect("mkdir");
            // GIF holds palette colour, written from RGBA.
            let img = if format == image::ImageFormat::Gif {
                image::DynamicImage::ImageRgba8(region.to_rgba8())
            } else {
                region.clone()
            };
            img.save_with_format(&path, format).expect("write seed");
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let img = fer_dataset::safe_read::decode_image(&bytes, name).expect("decodes");
        assert_eq!((img.width(), img.height()), (96, 96), "{name}");
        let mut engine = Engine::new(&model, EngineKind::Int8, None).expect("engine");
        let faces = classify_gray(&mut engine, &detector, &gray_of(&img)).expect("classifies");
        assert_eq!(faces.len(), 1, "{name}: one face (the whole crop)");
    }
}
