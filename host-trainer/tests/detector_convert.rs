//! `host-trainer detector`: the committed int8 detector (`models/face_yunet_s.det`) is exactly
//! what the converter makes from the committed ONNX file and the data set, and its faces are the
//! float graph's.

use host_trainer::commands::detector::convert;
use host_trainer::commands::detector::DetectorArgs;

#[test]
fn the_committed_detector_is_the_converters_and_finds_the_float_graphs_faces() {
    let models = fer_test_support::models_dir();
    let args = DetectorArgs {
        onnx: models.join("face_yunet_s.onnx"),
        data: None,
        manifest: models.join("split.json"),
        textures: fer_test_support::photos_dir(),
        width: 160,
        height: 128,
        frames: 200,
        check_frames: 100,
        out: models.join("face_yunet_s.det"),
        force: false,
    };
    let c = convert(&fer_test_support::fer_dir(), &args).expect("converts");
    let committed = std::fs::read(&args.out).expect("models/face_yunet_s.det");
    assert!(
        c.file == committed,
        "models/face_yunet_s.det differs from what `host-trainer detector` makes ({} bytes against {}): convert it again and commit it",
        committed.len(),
        c.file.len()
    );
    let a = &c.agreement;
    eprintln!("{a:?}");
    // Measured: 58 of 58 float faces matched (int8: 59 faces), mean IoU 97.0%, landmarks 0.90 px
    // apart.
    assert!(
        a.float_faces >= 30,
        "only {} float faces to compare",
        a.float_faces
    );
    assert!(
        a.matched * 100 >= a.float_faces * 95,
        "int8 matched {} of {} float faces",
        a.matched,
        a.float_faces
    );
    assert!(a.mean_iou >= 93.0, "mean IoU {:.1}%", a.mean_iou);
    assert!(
        a.mean_landmark_px <= 1.5,
        "landmarks {:.2} px apart",
        a.mean_landmark_px
    );
    assert!(
        a.int8_faces <= a.float_faces + a.float_faces / 5 + 2,
        "int8 found {} faces where float found {}",
        a.int8_faces,
        a.float_faces
    );
}
