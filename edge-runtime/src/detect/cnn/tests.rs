//! Each layer against its definition in real numbers: the int8 result is the real one rounded
//! (half up) onto the output's grid, saturated, for random maps with borders, odd sizes, both
//! signs of weights and the zero points at their extremes.

use super::ops::*;
use crate::kernels::cases::Cases;
use crate::requant::Stage;
use std::vec::Vec;

/// A stage for `q = round(acc · m_real) + zero` (after a ReLU when asked), as the quantizer
/// builds it: multiplier in Q31 normalized, rounding constant and zero point in the offset.
fn stage(m_real: f64, zero: i32) -> Stage {
    let mut n = 31u32;
    let mut m = m_real;
    while m.abs() < 0.5 {
        m *= 2.0;
        n += 1;
    }
    let m = (m * f64::from(1u32 << 31)).round() as i64;
    let m = m.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    Stage {
        m,
        n,
        b: (i64::from(zero) << n) + (1i64 << (n - 1)),
    }
}

fn bytes_of(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn stages_of(v: &[Stage]) -> Vec<u8> {
    v.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn random_i8(cases: &mut Cases, n: usize) -> Vec<i8> {
    let mut b = std::vec![0u8; n];
    cases.fill(&mut b, true);
    b.into_iter().map(|x| x as i8).collect()
}

/// What the stage gives for a real accumulator `acc` (exactly representable here): the
/// expected int8 value.
fn expect(s: &Stage, acc: i64, relu: bool) -> i8 {
    let acc = if relu { acc.max(0) } else { acc };
    ((acc * i64::from(s.m) + s.b) >> s.n).clamp(-128, 127) as i8
}

#[test]
fn stem_pointwise_and_depthwise_are_their_definitions() {
    let mut cases = Cases::new();
    for (h, w, c) in [
        (5, 7, 3),
        (8, 8, 16),
        (1, 1, 4),
        (6, 9, 1),
        (2, 5, 2),
        (4, 2, 3),
        (3, 3, 5),
    ] {
        let cout = c + 1;
        let mut wb = std::vec![0u8; 9 * cout.max(c) * cout.max(c)];
        cases.fill(&mut wb, true);
        let bias: Vec<i32> = (0..cout.max(c)).map(|i| (i as i32 - 2) * 517).collect();
        let st: Vec<Stage> = (0..cout.max(c))
            .map(|i| {
                stage(
                    if i % 3 == 0 { -0.0021 } else { 0.0037 },
                    [-128, 0, 5][i % 3],
                )
            })
            .collect();
        for relu in [false, true] {
            // Stem on pixels 0-255.
            let mut pix = std::vec![0u8; h * w];
            cases.fill(&mut pix, true);
            let p = ConvParams {
                weights: &wb[..9 * cout],
                bias: &bytes_of(&bias[..cout]),
                stages: &stages_of(&st[..cout]),
                relu,
            };
            let o = MapShape::stem_output(h, w, cout);
            let mut out = std::vec![0i8; o.len()];
            stem(&pix, h, w, &p, &mut out);
            for oy in 0..o.h {
                for ox in 0..o.w {
                    for co in 0..cout {
                        let mut acc = i64::from(bias[co]);
                        for t in 0..9 {
                            let (y, x) = (2 * oy as i64 + t / 3 - 1, 2 * ox as i64 + t % 3 - 1);
                            if (0..h as i64).contains(&y) && (0..w as i64).contains(&x) {
                                acc += i64::from(pix[y as usize * w + x as usize])
                                    * i64::from(wb[co * 9 + t as usize] as i8);
                            }
                        }
                        assert_eq!(out[(oy * o.w + ox) * cout + co], expect(&st[co], acc, relu));
                    }
                }
            }
            // Pointwise and depthwise on an int8 map, zero points at both ends.
            for zero in [-128, 127, 3] {
                let s = MapShape { h, w, c };
                let x = random_i8(&mut cases, s.len());
                let p = ConvParams {
                    weights: &wb[..c * cout],
                    bias: &bytes_of(&bias[..cout]),
                    stages: &stages_of(&st[..cout]),
                    relu,
                };
                let mut out = std::vec![0i8; h * w * cout];
                let mut scratch = std::vec![0i8; pointwise_scratch(c)];
                pointwise(&x, c, zero, &p, &mut out, &mut scratch);
                let mut plain = std::vec![0i8; h * w * cout];
                pointwise_reference(&x, c, zero, &p, &mut plain, &mut scratch);
                assert_eq!(
                    out, plain,
                    "pointwise against its plain version, {h}x{w}x{c}"
                );
                for px in 0..h * w {
                    for co in 0..cout {
                        let acc = i64::from(bias[co])
                            + (0..c)
                                .map(|ci| {
                                    (i64::from(x[px * c + ci]) - i64::from(zero))
                                        * i64::from(wb[co * c + ci] as i8)
                                })
                                .sum::<i64>();
                        assert_eq!(out[px * cout + co], expect(&st[co], acc, relu), "pointwise");
                    }
                }
                let p = ConvParams {
                    weights: &wb[..9 * c],
                    bias: &bytes_of(&bias[..c]),
                    stages: &stages_of(&st[..c]),
                    relu,
                };
                let mut out = std::vec![0i8; s.len()];
                depthwise(&x, s, zero, &p, &mut out);
                let mut plain = std::vec![0i8; s.len()];
                depthwise_reference(&x, s, zero, &p, &mut plain);
                assert_eq!(
                    out, plain,
                    "depthwise against its plain version, {h}x{w}x{c}"
                );
                for y in 0..h as i64 {
                    for xx in 0..w as i64 {
                        for ch in 0..c {
                            let mut acc = i64::from(bias[ch]);
                            for t in 0..9i64 {
                                let (iy, ix) = (y + t / 3 - 1, xx + t % 3 - 1);
                                if (0..h as i64).contains(&iy) && (0..w as i64).contains(&ix) {
                                    let v = x[(iy as usize * w + ix as usize) * c + ch];
                                    acc += (i64::from(v) - i64::from(zero))
                                        * i64::from(wb[ch * 9 + t as usize] as i8);
                                }
                            }
                            let got = out[(y as usize * w + xx as usize) * c + ch];
                            assert_eq!(got, expect(&st[ch], acc, relu), "depthwise");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn pool_upsample_and_add_are_their_definitions() {
    let mut cases = Cases::new();
    let s = MapShape { h: 5, w: 7, c: 3 };
    let x = random_i8(&mut cases, s.len());
    let at = |y: usize, xx: usize, c: usize| x[(y * s.w + xx) * s.c + c];
    let mut pooled = std::vec![0i8; 2 * 3 * 3];
    max_pool2(&x, s, &mut pooled);
    for (i, &v) in pooled.iter().enumerate() {
        let (c, px) = (i % 3, i / 3);
        let (oy, ox) = (px / 3, px % 3);
        let want = [(0, 0), (0, 1), (1, 0), (1, 1)]
            .iter()
            .map(|&(dy, dx)| at(2 * oy + dy, 2 * ox + dx, c))
            .max()
            .unwrap();
        assert_eq!(v, want);
    }
    let mut up = std::vec![0i8; 4 * s.len()];
    upsample2(&x, s, &mut up);
    for y in 0..2 * s.h {
        for xx in 0..2 * s.w {
            for c in 0..s.c {
                assert_eq!(up[(y * 2 * s.w + xx) * s.c + c], at(y / 2, xx / 2, c));
            }
        }
    }
    // Add with scales 0.05 and 0.013 into 0.04: within half a step of the real sum.
    let (sa, sb, so) = (0.05f64, 0.013f64, 0.04f64);
    let shift = 14 + 15;
    let p = AddParams {
        a_zero: -7,
        b_zero: 100,
        a_mul: (sa / so * f64::from(1 << 14)).round() as i32,
        b_mul: (sb / so * f64::from(1 << 14)).round() as i32,
        stage: Stage {
            m: 1 << 15,
            n: shift,
            b: (-3i64 << shift) + (1i64 << (shift - 1)),
        },
    };
    assert!(p.a_mul <= ADD_MUL_MAX && p.b_mul <= ADD_MUL_MAX);
    let y = random_i8(&mut cases, s.len());
    let mut sum = std::vec![0i8; s.len()];
    add(&x, &y, &p, &mut sum);
    for i in 0..s.len() {
        let real = (sa * f64::from(i32::from(x[i]) + 7) + sb * f64::from(i32::from(y[i]) - 100))
            / so
            - 3.0;
        let want = real.round().clamp(-128.0, 127.0);
        assert!(
            (f64::from(sum[i]) - want).abs() <= 1.0,
            "{} vs {real}",
            sum[i]
        );
    }
}

mod file {
    use crate::detect::cnn::decode::{decode, suppress, DecodeParams, Detection, ONE};
    use crate::detect::cnn::file::*;
    use crate::detect::cnn::run::RunError;
    use crate::requant::Stage;
    use std::vec::Vec;

    fn stage_bytes(s: Stage, n: usize) -> Vec<u8> {
        (0..n).flat_map(|_| s.to_le_bytes()).collect()
    }

    /// A tiny detector: stem (2 channels) → max pool → max pool (stride 8) → pointwise to each
    /// head (1, 1, 4, 10 channels). The class and objectness maps are 2·(mean of the stem's
    /// first channel) − 64 or so, so bright frames score high.
    fn spec() -> DetectorSpec {
        let unit = Stage {
            m: 1 << 30,
            n: 30,
            b: 1 << 29,
        };
        let mut stem = Vec::new();
        stem.extend([1u8; 9]);
        stem.extend([0u8; 9]);
        stem.extend([0u8; 8]);
        // acc = Σ pixels (≤ 2295); q = acc / 32 − 128 → the stage: m = 2^30, n = 35, b = −128·2^35.
        let s = Stage {
            m: 1 << 30,
            n: 35,
            b: (-128i64 << 35) + (1 << 34),
        };
        stem.extend(stage_bytes(s, 2));
        let head = |cout: usize, w: u8| {
            let mut p = Vec::new();
            for _ in 0..cout {
                p.extend([w, 0]);
            }
            p.extend((0..cout).flat_map(|_| 0i32.to_le_bytes()));
            p.extend(stage_bytes(unit, cout));
            p
        };
        let layers = std::vec![
            LayerSpec {
                kind: LayerKind::Stem,
                relu: false,
                input: 0,
                other: 0,
                params: stem
            },
            LayerSpec {
                kind: LayerKind::MaxPool2,
                relu: false,
                input: 1,
                other: 0,
                params: Vec::new()
            },
            LayerSpec {
                kind: LayerKind::MaxPool2,
                relu: false,
                input: 2,
                other: 0,
                params: Vec::new()
            },
            LayerSpec {
                kind: LayerKind::Pointwise,
                relu: false,
                input: 3,
                other: 0,
                params: head(1, 1)
            },
            LayerSpec {
                kind: LayerKind::Pointwise,
                relu: false,
                input: 3,
                other: 0,
                params: head(1, 1)
            },
            LayerSpec {
                kind: LayerKind::Pointwise,
                relu: false,
                input: 3,
                other: 0,
                params: head(4, 0)
            },
            LayerSpec {
                kind: LayerKind::Pointwise,
                relu: false,
                input: 3,
                other: 0,
                params: head(10, 0)
            },
        ];
        // Scores: q/16 as the logit; box: zero offsets, exp 1 (size 1 stride); landmarks step 1/16.
        let sig: Vec<u8> = (-128..=127i32)
            .flat_map(|q| {
                let p = 1.0 / (1.0 + (-(f64::from(q) / 16.0)).exp());
                ((p * 65536.0).round().min(65535.0) as u16).to_le_bytes()
            })
            .collect();
        let mut bx = (ONE as i32 / 16).to_le_bytes().to_vec();
        bx.extend((0..256).flat_map(|_| ONE.to_le_bytes()));
        let heads = std::vec![
            HeadSpec {
                kind: HeadKind::Class,
                stride: 8,
                tensor: 4,
                table: sig.clone()
            },
            HeadSpec {
                kind: HeadKind::Objectness,
                stride: 8,
                tensor: 5,
                table: sig
            },
            HeadSpec {
                kind: HeadKind::Box,
                stride: 8,
                tensor: 6,
                table: bx
            },
            HeadSpec {
                kind: HeadKind::Landmarks,
                stride: 8,
                tensor: 7,
                table: (ONE as i32 / 16).to_le_bytes().to_vec()
            },
        ];
        DetectorSpec {
            tensors: std::vec![
                (1, 0),
                (2, -128),
                (2, -128),
                (2, -128),
                (1, 0),
                (1, 0),
                (4, 0),
                (10, 0)
            ],
            layers,
            heads,
        }
    }

    #[test]
    fn a_file_round_trips_plans_runs_and_decodes() {
        let bytes = spec().encode().expect("valid");
        let det = CnnDetector::from_bytes(&bytes).expect("loads");
        assert_eq!(
            (det.tensor_count(), det.layer_count(), det.head_count()),
            (8, 7, 4)
        );
        assert_eq!(det.max_stride(), 8);
        assert_eq!(
            det.plan(20, 16).unwrap_err(),
            RunError::FrameSize {
                width: 20,
                height: 16,
                multiple: 8
            }
        );
        let plan = det.plan(32, 16).expect("plan");
        // No two tensors alive at once share bytes.
        for t in 1..8 {
            for u in 1..t {
                let (a, b) = (plan.range(t), plan.range(u));
                let apart = a.end <= b.start || b.end <= a.start;
                // Tensor u is last read by a layer after t's is produced only for the heads' input.
                if u == 3 || t >= 4 && u >= 4 || t == u + 1 {
                    assert!(apart, "tensors {u} and {t}: {b:?} {a:?}");
                }
            }
        }
        let mut arena = std::vec![0i8; plan.arena_len()];
        // Left half bright, right half dark: the bright cells score high.
        let frame: Vec<u8> = (0..32 * 16)
            .map(|i| if i % 32 < 16 { 250 } else { 10 })
            .collect();
        assert_eq!(
            det.run(&plan, &frame[1..], &mut arena).unwrap_err(),
            RunError::FrameLength {
                expected: 512,
                got: 511
            }
        );
        det.run(&plan, &frame, &mut arena).expect("runs");
        let mut out = [Detection::EMPTY; 8];
        let p = DecodeParams {
            min_score: ONE * 9 / 10,
            nms_percent: 30,
        };
        let n = decode(&det, &plan, &arena, &p, &mut out);
        // The four cells of the bright half (columns 0 and 1 of both rows) score about 0.975, the
        // others at most 0.68; boxes of one stride centred on each cell's corner do not overlap.
        assert_eq!(n, 4, "{:?}", &out[..n]);
        assert!(out[..n]
            .iter()
            .all(|d| d.x < 8 && d.w == 8 && d.h == 8 && d.score > ONE * 9 / 10));
        assert!(out[..n].windows(2).all(|w| w[0].score >= w[1].score));
    }

    /// The CNN detector fuzzer's seed (`fuzz/seeds/cnn_detector`): the tiny detector above
    /// (the published one is 90 kB, too large for the fuzzer to mutate quickly).
    /// `WRITE_FUZZ_SEED=1 cargo test -p edge-runtime` rewrites it.
    #[test]
    fn the_fuzz_seed_is_the_tiny_detector() {
        let dir = crate::tests::package_dir().join("../fuzz/seeds/cnn_detector");
        let path = dir.join("tiny.det");
        let bytes = spec().encode().expect("valid");
        if std::env::var_os("WRITE_FUZZ_SEED").is_some() {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write seed");
        }
        let seed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(seed == bytes, "{} is not the tiny detector", path.display());
    }

    #[test]
    fn every_damage_to_a_file_is_refused_by_name() {
        let good = spec().encode().expect("valid");
        let reseal = |mut b: Vec<u8>| {
            let crc = crate::crc32::crc32(&b[PREAMBLE..]);
            b[12..16].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let err = |b: &[u8]| match CnnDetector::from_bytes(b) {
            Ok(_) => panic!("a damaged file was accepted"),
            Err(e) => e,
        };
        assert_eq!(
            err(&good[..10]),
            DetectorError::Truncated {
                needed: 16,
                got: 10
            }
        );
        assert_eq!(err(b"FERQ this is a model"), DetectorError::BadMagic);
        let mut b = good.clone();
        b[40] ^= 1;
        assert!(matches!(err(&b), DetectorError::ChecksumMismatch { .. }));
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(err(&b), DetectorError::TrailingBytes { extra: 1 }));
        // Edits with a valid checksum: each names what is wrong.
        let edit = |f: &dyn Fn(&mut DetectorSpec)| {
            let mut s = spec();
            f(&mut s);
            match s.encode() {
                Ok(_) => panic!("an edited file was accepted"),
                Err(e) => e,
            }
        };
        assert_eq!(
            edit(&|s| s.tensors[0] = (3, 0)),
            DetectorError::BadTensor { tensor: 0 }
        );
        assert_eq!(edit(&|s| s.tensors.truncate(7)), DetectorError::BadCounts);
        assert_eq!(
            edit(&|s| s.layers[3].input = 5),
            DetectorError::BadLayer { layer: 3 }
        );
        assert_eq!(
            edit(&|s| s.layers[1].relu = true),
            DetectorError::BadLayer { layer: 1 }
        );
        // A second input on a layer that is not an add (found by the fuzzer: it was indexed).
        assert_eq!(
            edit(&|s| s.layers[3].other = 1280),
            DetectorError::BadLayer { layer: 3 }
        );
        assert_eq!(
            edit(&|s| s.tensors[2] = (2, 0)),
            DetectorError::BadLayer { layer: 1 }
        );
        // A stage shift of 0; a bias that overflows the accumulator.
        assert_eq!(
            edit(&|s| s.layers[0].params[26 + 4..26 + 8].copy_from_slice(&0u32.to_le_bytes())),
            DetectorError::BadRequant {
                layer: 0,
                channel: 0
            }
        );
        assert_eq!(
            edit(&|s| s.layers[0].params[18..22].copy_from_slice(&i32::MAX.to_le_bytes())),
            DetectorError::BadRequant {
                layer: 0,
                channel: 0
            }
        );
        // A word short (a byte could fall into the alignment padding): refused, by whichever check
        // notices first the bytes that shift.
        edit(&|s| {
            let params = &mut s.layers[3].params;
            params.truncate(params.len() - 4);
        });
        assert_eq!(
            edit(&|s| s.heads[1].kind = HeadKind::Class),
            DetectorError::BadHead { head: 1 }
        );
        assert_eq!(
            edit(&|s| s.heads[2].tensor = 4),
            DetectorError::BadHead { head: 2 }
        );
        assert_eq!(
            edit(&|s| {
                for h in &mut s.heads {
                    h.stride = 6;
                }
            }),
            DetectorError::BadHead { head: 0 }
        );
        // A raw byte edit: an unknown layer kind.
        let mut b = good.clone();
        b[PREAMBLE + 8 + 8 * 4] = 9;
        assert_eq!(err(&reseal(b)), DetectorError::BadLayer { layer: 0 });
        // A padding byte before a layer's parameters that is not 0: refused as that layer's.
        let s = spec();
        let mut at = 8 + 4 * s.tensors.len() + 6 * s.layers.len() + 4 * s.heads.len();
        let mut pads = Vec::new();
        for (k, layer) in s.layers.iter().enumerate() {
            pads.extend((at..at.next_multiple_of(4)).map(|p| (p, k as u16)));
            at = at.next_multiple_of(4) + layer.params.len();
        }
        assert!(!pads.is_empty(), "the test file has padding bytes");
        for (p, layer) in pads {
            let mut b = good.clone();
            assert_eq!(b[PREAMBLE + p], 0, "byte {p} is padding");
            b[PREAMBLE + p] = 0x80;
            assert_eq!(err(&reseal(b)), DetectorError::BadLayer { layer });
        }
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_faces_in_a_fixed_order() {
        let d = |x: i32, score: u32| Detection {
            x,
            y: 0,
            w: 10,
            h: 10,
            score,
            landmarks: [[0; 2]; 5],
        };
        let mut faces = [d(0, 10), d(2, 30), d(50, 20), d(51, 20), d(100, 5)];
        let n = suppress(&mut faces, 30);
        assert_eq!(&faces[..n], &[d(2, 30), d(50, 20), d(100, 5)]);
    }
}

/// The published CNN detector on the golden QVGA frame (the astronaut portrait, as the QEMU
/// firmware's detector check uses it), halved to 160x128 and whole at 320x256: the same faces,
/// scores and landmarks, and the same head maps to the byte (their CRC-32), on every platform
/// the unit tests run on (x86-64; aarch64 under qemu-aarch64 in `.ci/run`, two CPUs).
#[test]
fn golden_frame_detections_are_the_same_everywhere() {
    use crate::detect::cnn::decode::{decode, DecodeParams, Detection};
    use crate::detect::cnn::file::CnnDetector;
    use crate::detect::cnn::input::{input_size, prepare};
    use crate::preprocess::GrayFrame;
    let det = CnnDetector::from_bytes(include_bytes!("../../../../models/face_yunet_s.det"))
        .expect("published detector");
    let pixels = include_bytes!("../../../../models/golden/detect_frame.gray");
    let frame = GrayFrame::new(pixels, 320, 240).expect("frame");
    let mut seen = std::vec::Vec::new();
    for factor in [2, 1] {
        let (iw, ih) = input_size(320, 240, factor, det.max_stride()).expect("size");
        let mut input = std::vec![0u8; iw * ih];
        prepare(&frame, factor, (iw, ih), &mut input);
        let plan = det.plan(iw, ih).expect("plan");
        let mut arena = std::vec![0i8; plan.arena_len()];
        det.run(&plan, &input, &mut arena).expect("run");
        let maps: std::vec::Vec<u8> = (0..det.head_count())
            .flat_map(|h| {
                arena[plan.range(det.head(h).tensor)]
                    .iter()
                    .map(|&v| v as u8)
            })
            .collect();
        let mut out = [Detection::EMPTY; 16];
        let n = decode(&det, &plan, &arena, &DecodeParams::default(), &mut out);
        seen.push((
            factor,
            plan.arena_len(),
            crate::crc32::crc32(&maps),
            out[..n].to_vec(),
        ));
    }
    // Recorded on x86-64 (2026-12-07): the astronaut's face, found at both sizes.
    let face = |x, y, w, h, score, landmarks| Detection {
        x,
        y,
        w,
        h,
        score,
        landmarks,
    };
    let golden = [
        (
            2,
            205_315,
            2_510_298_571,
            std::vec![face(
                56,
                3,
                27,
                30,
                48_298,
                [[66, 13], [77, 13], [71, 19], [66, 23], [74, 24]]
            )],
        ),
        (
            1,
            819_715,
            1_745_125_689,
            std::vec![face(
                114,
                4,
                54,
                64,
                56_467,
                [[127, 24], [153, 25], [140, 38], [128, 49], [151, 50]]
            )],
        ),
    ];
    assert_eq!(seen, golden);
}

/// A frame shrunk for the detector: each input pixel the rounded mean of its block (the pixels
/// it has at the frame's right and bottom edges), 0 past the frame — for factors 1-3 and odd
/// sizes (the factor 2 has its own loop).
#[test]
fn shrinking_a_frame_averages_each_block() {
    use crate::detect::cnn::input::{input_size, prepare};
    use crate::preprocess::GrayFrame;
    let mut cases = Cases::new();
    for (w, h) in [(7, 5), (8, 6), (33, 17), (1, 1)] {
        let mut px = std::vec![0u8; w * h];
        cases.fill(&mut px, true);
        let frame = GrayFrame::new(&px, w, h).expect("frame");
        for factor in 1..=3 {
            let (iw, ih) = input_size(w, h, factor, 8).expect("size");
            let mut out = std::vec![1u8; iw * ih];
            prepare(&frame, factor, (iw, ih), &mut out);
            for y in 0..ih {
                for x in 0..iw {
                    let ys = (y * factor..((y + 1) * factor).min(h)).collect::<Vec<_>>();
                    let xs = (x * factor..((x + 1) * factor).min(w)).collect::<Vec<_>>();
                    let n = (ys.len() * xs.len()) as u32;
                    let sum: u32 = ys
                        .iter()
                        .flat_map(|&yy| xs.iter().map(move |&xx| (yy, xx)))
                        .map(|(yy, xx)| u32::from(px[yy * w + xx]))
                        .sum();
                    let want = (sum + n / 2).checked_div(n).unwrap_or(0) as u8;
                    assert_eq!(out[y * iw + x], want, "{w}x{h} / {factor} at ({x}, {y})");
                }
            }
        }
    }
}
