//! Where FER-2013 puts a face's landmarks: validation faces pasted into camera-like frames, the
//! CNN detector's five landmarks measured relative to the pasted square. The aligned crop
//! (`edge_runtime::align`) maps a detected face to this framing. A measurement, not a check: run it with
//! `cargo test --release -p fer-checks --test face_framing -- --ignored --nocapture`.

use edge_runtime::detect::cnn::decode::{DecodeParams, Detection};
use edge_runtime::detect::cnn::file::CnnDetector;
use fer_checks::{artifact, cnn_detections, textures, validation_faces};
use fer_dataset::composite::{one_face, Rng};

#[test]
#[ignore = "a measurement (prints FER-2013's framing, asserts nothing): run with --ignored"]
fn landmarks_of_fer_faces_in_frames() {
    let file = artifact("face_yunet_s.det");
    let det = CnnDetector::from_bytes(&file).expect("detector");
    let faces = validation_faces(60);
    let textures = textures();
    let mut rng = Rng::new(77);
    let (w, h) = (320, 240);
    let mut rows: Vec<[f64; 4]> = Vec::new();
    for i in 0..faces.len() {
        let comp = one_face(&faces, i, w, h, (80, 200), &textures, &mut rng);
        let (gx, gy, gs, _) = comp.faces[0];
        let found = cnn_detections(&det, &comp.pixels, (w, h), 1, &DecodeParams::default());
        let truth = Detection {
            x: gx as i32,
            y: gy as i32,
            w: gs as i32,
            h: gs as i32,
            ..Detection::EMPTY
        };
        let Some(d) = found.iter().find(|d| d.overlaps(&truth, 50)) else {
            continue;
        };
        let [re, le, ..] = d.landmarks;
        let (mx, my) = (
            f64::from(re[0] + le[0]) / 2.0,
            f64::from(re[1] + le[1]) / 2.0,
        );
        let (dx, dy) = (f64::from(le[0] - re[0]), f64::from(le[1] - re[1]));
        let e = dx.hypot(dy);
        let s = gs as f64;
        rows.push([
            (mx - gx as f64) / s,
            (my - gy as f64) / s,
            e / s,
            dy.atan2(dx).to_degrees(),
        ]);
    }
    let n = rows.len() as f64;
    let mean = |k: usize| rows.iter().map(|r| r[k]).sum::<f64>() / n;
    let sd = |k: usize| {
        let m = mean(k);
        (rows.iter().map(|r| (r[k] - m).powi(2)).sum::<f64>() / n).sqrt()
    };
    println!(
        "{} of {} faces found; eye midpoint at x {:.4} ± {:.4}, y {:.4} ± {:.4} of the side; eye distance {:.4} ± {:.4} of the side; eye line {:.2} ± {:.2} degrees",
        rows.len(),
        faces.len(),
        mean(0),
        sd(0),
        mean(1),
        sd(1),
        mean(2),
        sd(2),
        mean(3),
        sd(3)
    );
    assert!(rows.len() > faces.len() / 2);
}
