//! The camera path without a camera: recorded frames (YUYV, UYVY, MJPEG with and without Huffman
//! tables) built from real FER-2013 faces decode to the same gray image and give the same
//! expression as the image itself; and a missing or non-camera device is a clear error.
#![cfg(target_os = "linux")]

use std::process::Command;

use edge_cli::classify::classify_gray;
use edge_cli::engine::{Engine, EngineKind};
use edge_cli::faces::{Detector, FaceMode};
use edge_cli::frame::{to_gray, FrameFormat, Gray, Layout};
use edge_runtime::Model;

/// Real faces from the test folder, each pasted at the centre of a 160x120 frame (gray border),
/// as a camera framing one face would see it.
fn frames(n: usize) -> Vec<Gray> {
    let dir = fer_test_support::fer_dir().join("test").join("surprise");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .take(n)
        .map(|p| {
            let face = image::open(p).expect("face").to_luma8();
            let (w, h) = (160usize, 120usize);
            let mut pixels = vec![128u8; w * h];
            let (x0, y0) = ((w - 120) / 2, 0);
            let big =
                image::imageops::resize(&face, 120, 120, image::imageops::FilterType::Triangle);
            for y in 0..120 {
                for x in 0..120 {
                    pixels[(y0 + y) * w + x0 + x] = big.get_pixel(x as u32, y as u32).0[0];
                }
            }
            Gray {
                width: w,
                height: h,
                pixels,
            }
        })
        .collect()
}

fn yuyv(g: &Gray) -> Vec<u8> {
    g.pixels
        .iter()
        .enumerate()
        .flat_map(|(i, &y)| [y, if i % 2 == 0 { 110 } else { 150 }])
        .collect()
}

fn jpeg(g: &Gray) -> Vec<u8> {
    let img =
        image::GrayImage::from_raw(g.width as u32, g.height as u32, g.pixels.clone()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out.into_inner()
}

#[test]
fn recorded_yuyv_and_mjpeg_frames_classify_like_the_images() {
    let model = Model::from_bytes(edge_cli::model::EMBEDDED).expect("model");
    let mut engine = Engine::new(&model, EngineKind::Int8, None).expect("engine");
    // The centre square isolates the frame-decoding path (the detector has its own checks).
    let detector = Detector::new(None, FaceMode::Centre).expect("detector");
    let mut agree_jpeg = 0;
    let all = frames(20);
    for g in &all {
        let fmt = |layout| FrameFormat {
            layout,
            width: g.width,
            height: g.height,
            bytes_per_line: 0,
        };
        let direct = classify_gray(&mut engine, &detector, g).expect("classify");
        assert_eq!(direct.len(), 1);
        // YUYV and UYVY carry the luma exactly: identical logits.
        let from_yuyv = to_gray(&fmt(Layout::Yuyv), &yuyv(g)).expect("yuyv");
        assert_eq!(&from_yuyv, g);
        let uyvy: Vec<u8> = yuyv(g).chunks_exact(2).flat_map(|p| [p[1], p[0]]).collect();
        assert_eq!(&to_gray(&fmt(Layout::Uyvy), &uyvy).expect("uyvy"), g);
        let via = classify_gray(&mut engine, &detector, &from_yuyv).expect("classify");
        assert_eq!(via[0].logits, direct[0].logits);
        // MJPEG is lossy: the same label on nearly every frame.
        let from_jpeg = to_gray(&fmt(Layout::Mjpeg), &jpeg(g)).expect("mjpeg");
        let via = classify_gray(&mut engine, &detector, &from_jpeg).expect("classify");
        agree_jpeg += usize::from(via[0].label == direct[0].label);
    }
    assert!(
        agree_jpeg >= 18,
        "MJPEG frames agree on {agree_jpeg}/20 labels"
    );
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edge-cli"))
        .args(args)
        .output()
        .expect("run edge-cli")
}

#[test]
fn a_missing_camera_is_named_with_what_to_do() {
    let out = cli(&["camera", "--device", "/dev/video-not-here", "--frames", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/video-not-here: no such device: plug a camera in"),
        "{err}"
    );
}

#[test]
fn a_device_that_is_not_a_camera_is_refused() {
    let out = cli(&["camera", "--device", "/dev/null", "--frames", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/null: not a V4L2 device"), "{err}");
}
