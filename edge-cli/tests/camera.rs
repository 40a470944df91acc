//! The camera path without a camera: recorded frames (YUYV, UYVY, MJPEG with and without Huffman
//! tables) built from real FER-2013 faces decode to the same gray image and give the same
//! expression as the image itself; and a missing or non-camera device is a clear error.
#![cfg(target_os = "linux")]

use std::process::Command;

use edge_cli::classified::classify_gray;
use edge_cli::engine::{Engine, EngineKind};
use edge_cli::faces::{Detector, DetectorKind, FaceMode};
use edge_cli::frame::{to_gray, FrameFormat, GrayFrameBuf, Layout};
use edge_runtime::Model;

/// Real faces from the test folder, each pasted at the centre of a 160x120 frame (gray border),
/// as a camera framing one face would see it.
fn frames(n: usize) -> Vec<GrayFrameBuf> {
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
            GrayFrameBuf {
                width: w,
                height: h,
                pixels,
            }
        })
        .collect()
}

fn yuyv(g: &GrayFrameBuf) -> Vec<u8> {
    g.pixels
        .iter()
        .enumerate()
        .flat_map(|(i, &y)| [y, if i % 2 == 0 { 110 } else { 150 }])
        .collect()
}

fn jpeg(g: &GrayFrameBuf) -> Vec<u8> {
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
    let model = Model::from_bytes(edge_cli::model_file::EMBEDDED).expect("model");
    let mut engine = Engine::new(&model, EngineKind::Int8, None).expect("engine");
    // The centre square isolates the frame-decoding path (the detector has its own checks).
    let detector = Detector::new(DetectorKind::Lbp, None, FaceMode::Centre).expect("detector");
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

/// Recorded frames through `camera --replay`: one line per frame, the face followed as one
/// track, each line with the steady label and the frame's own label, and the count of label
/// changes at the end. Frames: one real face with sensor noise, then another real face in the
/// same place (the label changes themselves are measured by fer-checks, test `steady_labels`).
#[test]
fn replayed_frames_are_followed_with_steady_labels() {
    let dir = tempfile::tempdir().expect("tmp");
    let faces = frames(2);
    let mut rng = fer_dataset::rng::Rng::new(5);
    for i in 0..24 {
        let mut g = faces[i / 12].pixels.clone();
        for p in &mut g {
            *p = (i32::from(*p) + rng.below(13) as i32 - 6).clamp(0, 255) as u8;
        }
        let img = image::GrayImage::from_raw(160, 120, g).expect("frame");
        img.save(dir.path().join(format!("frame-{i:03}.png")))
            .expect("save");
    }
    let dir_arg = dir.path().display().to_string();
    // The centre square: the face is in every frame (the detector's recall is measured
    // elsewhere), so the track and the labels are what is checked here.
    let out = cli(&[
        "camera", "--replay", &dir_arg, "--json", "--faces", "centre",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 24);
    for (i, l) in lines.iter().enumerate() {
        let face = &l["faces"][0];
        assert_eq!(face["track"], 1, "frame {i}: {l}");
        assert!(face["raw"].is_string() && face["label"].is_string(), "{l}");
        assert!(
            face["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(&format!("frame-{i:03}.png"))),
            "{l}"
        );
    }
    // Both faces' own labels end up as the steady label: the first face's from the start, the
    // second's after the change.
    assert_eq!(lines[0]["faces"][0]["label"], lines[0]["faces"][0]["raw"]);
    assert_eq!(lines[23]["faces"][0]["label"], lines[23]["faces"][0]["raw"]);
    assert!(
        stderr.contains("24 frames, 24 with a face: label changes of the largest face"),
        "{stderr}"
    );
    // Without smoothing, the steady label is the frame's own.
    let out = cli(&[
        "camera",
        "--replay",
        &dir_arg,
        "--json",
        "--per-frame",
        "--faces",
        "centre",
    ]);
    assert!(out.status.success());
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        assert_eq!(v["faces"][0]["label"], v["faces"][0]["raw"], "{v}");
    }
    // A replay of something that is not an image names it.
    let bad = dir.path().join("notes.png");
    std::fs::write(&bad, b"not a picture").expect("write");
    let out = cli(&["camera", "--replay", &bad.display().to_string()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("notes.png"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
