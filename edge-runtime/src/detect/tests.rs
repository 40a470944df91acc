//! The detector on a hand-made cascade whose single feature fires on a bright square ringed by
//! darker cells: positions, scales, grouping, bad files, and frames of awkward sizes.

use super::cascade::{CascadeSpec, WeakSpec};
use super::*;
use crate::preprocess::GrayFrame;

/// Window 12x12; feature: 3x3 cells of 4x4 pixels. The code is 0 exactly when every outer cell
/// is darker than the centre; the subset holds only code 0.
fn spot_cascade() -> std::vec::Vec<u8> {
    let mut subset = [0u32; 8];
    subset[0] = 1; // code 0
    CascadeSpec {
        window_w: 12,
        window_h: 12,
        features: std::vec![Feature {
            x: 0,
            y: 0,
            w: 4,
            h: 4
        }],
        stages: std::vec![(
            0.5,
            std::vec![WeakSpec {
                feature: 0,
                subset,
                leaves: [1.0, -1.0],
            }]
        )],
    }
    .encode()
    .expect("valid cascade")
}

/// A `w × h` frame, gray 100, with bright 200 squares of side `s` at the given corners.
fn frame_with(w: usize, h: usize, spots: &[(usize, usize, usize)]) -> std::vec::Vec<u8> {
    let mut px = std::vec![100u8; w * h];
    for &(x0, y0, s) in spots {
        for y in y0..y0 + s {
            for x in x0..x0 + s {
                px[y * w + x] = 200;
            }
        }
    }
    px
}

fn run(
    file: &[u8],
    px: &[u8],
    w: usize,
    h: usize,
    params: DetectParams,
) -> (std::vec::Vec<Face>, DetectStats) {
    let c = Cascade::from_bytes(file).expect("cascade");
    let frame = GrayFrame::new(px, w, h).expect("frame");
    let mut scratch = std::vec![0u32; scratch_len(&c, w, h, &params)];
    let mut hits = std::vec![Face::EMPTY; 4096];
    let mut faces = std::vec![Face::EMPTY; 8];
    let st = detect(&c, &frame, &params, &mut scratch, &mut hits, &mut faces);
    (faces[..st.faces].to_vec(), st)
}

#[test]
fn lbp_code_bit_order_is_clockwise_from_the_top_left() {
    // A 12x12 image of 3x3 cells of 4x4 pixels; cell values chosen per cell.
    for (bright, bit) in [
        ((0, 0), 7),
        ((1, 0), 6),
        ((2, 0), 5),
        ((2, 1), 4),
        ((2, 2), 3),
        ((1, 2), 2),
        ((0, 2), 1),
        ((0, 1), 0),
    ] {
        let mut px = [0u8; 144];
        for y in 0..12 {
            for x in 0..12 {
                let (cx, cy) = (x / 4, y / 4);
                px[y * 12 + x] = if (cx, cy) == (1, 1) {
                    100
                } else if (cx, cy) == bright {
                    150
                } else {
                    50
                };
            }
        }
        let frame = GrayFrame::new(&px, 12, 12).unwrap();
        let mut ii = [0u32; 13 * 13];
        integral_level(&frame, 256, 12, 12, &mut ii);
        assert_eq!(
            ii[13 * 13 - 1],
            px.iter().map(|&p| u32::from(p)).sum::<u32>()
        );
        let code = lbp_code(&ii, &Corners::of(&[0, 0, 4, 4], 13));
        assert_eq!(code, 1 << bit, "bright cell {bright:?}");
    }
}

#[test]
fn finds_spots_at_their_place_and_scale() {
    let file = spot_cascade();
    // Spots of side 4 (window 12 at scale 1) and 8 (window 24 at scale 2).
    let px = frame_with(160, 120, &[(20, 30, 4), (100, 60, 8)]);
    let params = DetectParams {
        min_size: 12,
        max_size: 0,
        scale_step: 282,
        min_neighbours: 0,
    };
    let (faces, st) = run(&file, &px, 160, 120, params);
    assert!(st.levels > 5 && st.skipped_levels == 0, "{st:?}");
    assert_eq!(faces.len(), 2, "{faces:?}");
    // Each face box is centred on its spot.
    for (spot_cx, spot_cy) in [(22u32, 32u32), (104, 64)] {
        assert!(
            faces.iter().any(|f| (f.x + f.w / 2).abs_diff(spot_cx) <= 2
                && (f.y + f.h / 2).abs_diff(spot_cy) <= 2),
            "no face centred on ({spot_cx}, {spot_cy}): {faces:?}"
        );
    }
    // Largest first.
    assert!(faces[0].w >= faces[1].w);
}

#[test]
fn a_plain_frame_has_no_faces() {
    let file = spot_cascade();
    let px = std::vec![100u8; 64 * 48];
    let (faces, st) = run(&file, &px, 64, 48, DetectParams::default());
    assert!(faces.is_empty() && st.hits == 0 && st.windows > 0);
}

#[test]
fn frames_smaller_than_the_window_and_empty_frames_give_nothing() {
    let file = spot_cascade();
    for (w, h) in [(11, 40), (40, 11), (1, 1), (0, 0)] {
        let px = std::vec![100u8; w * h];
        let (faces, st) = run(&file, &px, w, h, DetectParams::default());
        assert!(faces.is_empty() && st.windows == 0, "{w}x{h}: {st:?}");
    }
}

#[test]
fn too_small_a_scratch_skips_levels_instead_of_failing() {
    let c_file = spot_cascade();
    let c = Cascade::from_bytes(&c_file).unwrap();
    let px = frame_with(64, 48, &[(10, 10, 4)]);
    let frame = GrayFrame::new(&px, 64, 48).unwrap();
    let params = DetectParams {
        min_size: 12,
        ..DetectParams::default()
    };
    let mut scratch = [0u32; 100];
    let (mut hits, mut faces) = ([Face::EMPTY; 16], [Face::EMPTY; 4]);
    let st = detect(&c, &frame, &params, &mut scratch, &mut hits, &mut faces);
    assert!(
        st.skipped_levels > 0 && st.levels == 0 && st.faces == 0,
        "{st:?}"
    );
}

#[test]
fn damaged_cascade_files_are_refused_with_the_reason() {
    let good = spot_cascade();
    assert_eq!(
        Cascade::from_bytes(&good[..10]).unwrap_err(),
        CascadeError::Truncated {
            needed: 16,
            got: 10
        }
    );
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(
        Cascade::from_bytes(&bad).unwrap_err(),
        CascadeError::BadMagic
    );
    // A 5-byte text file is not a cascade, rather than a truncated one.
    assert_eq!(
        Cascade::from_bytes(b"hello").unwrap_err(),
        CascadeError::BadMagic
    );
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        Cascade::from_bytes(&bad),
        Err(CascadeError::ChecksumMismatch { .. })
    ));
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        Cascade::from_bytes(&long).unwrap_err(),
        CascadeError::TrailingBytes { extra: 1 }
    );
    let mut v2 = good.clone();
    v2[4] = 2;
    assert!(matches!(
        Cascade::from_bytes(&v2),
        Err(CascadeError::UnsupportedVersion { found: 2, .. })
    ));
    // A feature outside the window, or a weak classifier naming a missing feature.
    let spec = |f: Feature, idx: u16| CascadeSpec {
        window_w: 12,
        window_h: 12,
        features: std::vec![f],
        stages: std::vec![(
            0.0,
            std::vec![WeakSpec {
                feature: idx,
                subset: [0; 8],
                leaves: [1.0, -1.0]
            }]
        )],
    };
    assert_eq!(
        spec(
            Feature {
                x: 4,
                y: 0,
                w: 4,
                h: 4
            },
            0
        )
        .encode()
        .unwrap_err(),
        CascadeError::FeatureOutsideWindow { feature: 0 }
    );
    assert_eq!(
        spec(
            Feature {
                x: 0,
                y: 0,
                w: 4,
                h: 4
            },
            1
        )
        .encode()
        .unwrap_err(),
        CascadeError::BadFeatureIndex { weak: 0 }
    );
    // Every truncation of a valid file is an error, never a panic.
    for n in 0..good.len() {
        assert!(Cascade::from_bytes(&good[..n]).is_err());
    }
}

/// The shortcut that stops a stage once its outcome is decided gives, window by window, the
/// same answer as summing every weak classifier: the published cascade on every window of three
/// pyramid levels of the golden QVGA frame (the faces and the background).
#[test]
fn deciding_a_stage_early_gives_the_full_sums_answer_on_every_window() {
    let cascade = Cascade::from_bytes(include_bytes!("../../../models/face_lbp.cascade"))
        .expect("published cascade");
    let pixels = include_bytes!("../../../models/golden/detect_frame.gray");
    let frame = GrayFrame::new(pixels, 320, 240).expect("frame");
    let mut rest = [Rest::default(); BOUND_TABLE];
    assert!(stage_bounds(&cascade, &mut rest), "the bounds apply to it");
    let bounds = &rest[..cascade.weak_records().len()];
    let features = cascade.feature_records();
    let (ww, wh) = (usize::from(cascade.window_w), usize::from(cascade.window_h));
    let (mut windows, mut passed) = (0, 0);
    for s in [427u32, 640, 1024] {
        let (lw, lh) = level_size(320, 240, s);
        let stride = lw + 1;
        let mut ii = std::vec![0u32; stride * (lh + 1)];
        integral_level(&frame, s, lw, lh, &mut ii);
        let corners: std::vec::Vec<Corners> =
            features.iter().map(|f| Corners::of(f, stride)).collect();
        let with = Search {
            ii: &ii,
            stride,
            corners: &corners,
            bounds: Some(bounds),
        };
        let without = Search {
            bounds: None,
            ..with
        };
        for wy in 0..=lh - wh {
            for wx in 0..=lw - ww {
                let p = passes(&cascade, &with, wx, wy);
                assert_eq!(
                    p,
                    passes(&cascade, &without, wx, wy),
                    "level {s}, ({wx}, {wy})"
                );
                windows += 1;
                passed += usize::from(p);
            }
        }
    }
    assert!(
        windows > 10_000 && passed > 0,
        "{windows} windows, {passed} passed"
    );
}
