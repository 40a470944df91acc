//! Tests of the kernels against an unfused reference, and of the model file validator.

use proptest::prelude::*;
use std::vec::Vec;

use crate::error::WideProblem;
use crate::format::{Blob, Builder, Kind, LayerDesc, LayerParams, QParams};
use crate::kernels::{conv, dense, dot, reference, shape};
use crate::requant::Stage;
use crate::{Error, Model};

/// The simplest possible formulation: zero-padded float-free convolution into a full-resolution
/// int32 map, ReLU, then the stage, then a separate max pool.
fn naive_conv(
    input: &[i8],
    w: &[i8],
    bias: &[i32],
    stages: &[Stage],
    s: &shape::ConvShape,
) -> Vec<i8> {
    let (h, wd) = (s.h as isize, s.w as isize);
    let mut full = vec![0i8; s.h * s.w * s.cout];
    for y in 0..h {
        for x in 0..wd {
            for co in 0..s.cout {
                let mut acc = i64::from(bias[co]);
                for ky in -1..=1isize {
                    for kx in -1..=1isize {
                        for ci in 0..s.cin {
                            let (iy, ix) = (y + ky, x + kx);
                            let v = if iy < 0 || ix < 0 || iy >= h || ix >= wd {
                                0 // real zero
                            } else {
                                i64::from(input[((iy * wd + ix) as usize) * s.cin + ci])
                                    - i64::from(s.input_zero)
                            };
                            let wi =
                                ((co * 3 + (ky + 1) as usize) * 3 + (kx + 1) as usize) * s.cin + ci;
                            acc += v * i64::from(w[wi]);
                        }
                    }
                }
                if s.relu {
                    acc = acc.max(0);
                }
                let st = stages[co];
                let q = ((i128::from(acc) * i128::from(st.m) + i128::from(st.b)) >> st.n)
                    .clamp(-128, 127);
                full[((y * wd + x) as usize) * s.cout + co] = q as i8;
            }
        }
    }
    if !s.pool {
        return full;
    }
    let (oh, ow) = (s.h / 2, s.w / 2);
    let mut out = vec![0i8; oh * ow * s.cout];
    for y in 0..oh {
        for x in 0..ow {
            for c in 0..s.cout {
                let at = |yy: usize, xx: usize| full[(yy * s.w + xx) * s.cout + c];
                out[(y * ow + x) * s.cout + c] = at(2 * y, 2 * x)
                    .max(at(2 * y, 2 * x + 1))
                    .max(at(2 * y + 1, 2 * x))
                    .max(at(2 * y + 1, 2 * x + 1));
            }
        }
    }
    out
}

fn stage_strategy() -> impl Strategy<Value = Stage> {
    // |M| between 2^-12 and 2^-4, either sign (negative BatchNorm scales), offsets of ±100 LSB.
    (
        any::<bool>(),
        1u32 << 30..(1u32 << 31) - 1,
        4u32..12,
        -100i64..100,
    )
        .prop_map(|(neg, m, e, off)| {
            let n = 31 + e;
            let m = if neg { -(m as i64) } else { m as i64 } as i32;
            Stage {
                m,
                n,
                b: (off << n) + (1i64 << (n - 1)),
            }
        })
}

/// This package's folder: `CARGO_MANIFEST_DIR` as cargo sets it when it runs the tests, else the
/// compiled-in one (read at run time: a target folder shared by two checkouts reuses a test
/// binary built in the other one, whose path would be compiled in).
pub(crate) fn package_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn bytes_i8(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}
fn bytes_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn bytes_stage(v: &[Stage]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conv_matches_unfused_reference(
        h in 2usize..10, w in 2usize..10,
        cin in prop_oneof![1usize..11, Just(16usize), Just(32), 33usize..41], cout in 1usize..5,
        zero in -128i32..128, relu in any::<bool>(), pool in any::<bool>(), seed in any::<u64>(),
        stages in proptest::collection::vec(stage_strategy(), 4),
    ) {
        let mut r = seed;
        let mut next = || { r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (r >> 33) as i64 };
        let input: Vec<i8> = (0..h * w * cin).map(|_| (next() % 256 - 128) as i8).collect();
        let weights: Vec<i8> = (0..cout * 9 * cin).map(|_| (next() % 256 - 128) as i8).collect();
        let bias: Vec<i32> = (0..cout).map(|_| (next() % 20001 - 10000) as i32).collect();
        let stages = &stages[..cout];
        let s = shape::ConvShape { h, w, cin, cout, input_zero: zero, relu, pool };
        let step = if pool { 2 } else { 1 };
        let (wb, bb, sb) = (bytes_i8(&weights), bytes_i32(&bias), bytes_stage(stages));
        let naive = naive_conv(&input, &weights, &bias, stages, &s);
        // The fast kernel (quad patches, pool on the accumulators) and its plain twin.
        let mut out = vec![0i8; (h / step) * (w / step) * cout];
        let mut scratch = vec![0i8; conv::scratch_bytes(cin, pool)];
        conv::conv3x3(&input, &wb, &bb, &sb, &s, &mut out, &mut scratch, None);
        prop_assert_eq!(&out, &naive);
        let mut plain = vec![0i8; out.len()];
        conv::conv3x3_reference(&input, &wb, &bb, &sb, &s, &mut plain);
        prop_assert_eq!(&plain, &naive);
    }

    #[test]
    fn dense_matches_reference(
        n in 1usize..64, outs in 1usize..8, zero in -128i32..128, relu in any::<bool>(),
        input in proptest::collection::vec(any::<i8>(), 64),
        weights in proptest::collection::vec(-127i8..=127, 64 * 8),
        bias in proptest::collection::vec(-5000i32..5000, 8),
        stages in proptest::collection::vec(stage_strategy(), 8),
    ) {
        let input = &input[..n];
        let weights = &weights[..n * outs];
        let mut out = vec![0i8; outs];
        let (wb, bb, sb) = (bytes_i8(weights), bytes_i32(&bias), bytes_stage(&stages));
        let mut scratch = vec![0i8; dense::scratch_bytes(n)];
        dense::dense(input, &wb, &bb, &sb, zero, relu, &mut out, &mut scratch);
        let mut plain = vec![0i8; outs];
        dense::dense_reference(input, &wb, &bb, &sb, zero, relu, &mut plain);
        prop_assert_eq!(&plain, &out);
        for o in 0..outs {
            let mut acc = i64::from(bias[o]);
            for i in 0..n {
                acc += (i64::from(input[i]) - i64::from(zero)) * i64::from(weights[o * n + i]);
            }
            if relu { acc = acc.max(0); }
            let st = stages[o];
            let q = ((i128::from(acc) * i128::from(st.m) + i128::from(st.b)) >> st.n).clamp(-128, 127);
            prop_assert_eq!(out[o], q as i8);
        }
    }
}

/// A small valid model: 48x48x1 → conv(2, pool) ×4 → 3x3x2 → dense 7.
pub(crate) fn tiny_model() -> Vec<u8> {
    model_with_channels(2)
}

/// 48x48x1 → conv(`c`, pool) ×4 → 3x3x`c` → dense 7 (`c` even).
fn model_with_channels(c: u16) -> Vec<u8> {
    let stage = Stage {
        m: 1 << 30,
        n: 38,
        b: 1 << 37,
    };
    let q = QParams {
        scale: 0.05,
        zero: -3,
    };
    let mut b = Builder::default();
    let mut side = 48u16;
    let mut cin = 1u16;
    let bias: Vec<i32> = (0..c).map(|k| [100, -50][usize::from(k % 2)]).collect();
    let stages: Vec<Stage> = (0..c)
        .map(|k| Stage {
            m: if k % 2 == 0 { 1 << 30 } else { -(1 << 30) },
            ..stage
        })
        .collect();
    for i in 0..4 {
        let desc = LayerDesc {
            kind: Kind::Conv3x3,
            in_h: side,
            in_w: side,
            in_c: cin,
            out_c: c,
            relu: true,
            pool: true,
            input: if i == 0 {
                QParams {
                    scale: 1.0 / 255.0,
                    zero: -128,
                }
            } else {
                q
            },
            output: q,
            weights: Blob { offset: 0, len: 0 },
            bias: Blob { offset: 0, len: 0 },
            stages: Blob { offset: 0, len: 0 },
        };
        let w: Vec<i8> = (0..usize::from(c) * 9 * cin as usize)
            .map(|k| ((k * 37 % 200) as i32 - 100) as i8)
            .collect();
        b.push(
            desc,
            &LayerParams {
                weights: &w,
                bias: &bias,
                stages: &stages,
            },
        );
        side /= 2;
        cin = c;
    }
    let desc = LayerDesc {
        kind: Kind::Dense,
        in_h: 1,
        in_w: 1,
        in_c: 3 * 3 * c,
        out_c: 7,
        relu: false,
        pool: false,
        input: q,
        output: QParams {
            scale: 0.1,
            zero: 0,
        },
        weights: Blob { offset: 0, len: 0 },
        bias: Blob { offset: 0, len: 0 },
        stages: Blob { offset: 0, len: 0 },
    };
    let w: Vec<i8> = (0..7 * 9 * i32::from(c))
        .map(|k| (k * 53 % 250 - 125) as i8)
        .collect();
    b.push(
        desc,
        &LayerParams {
            weights: &w,
            bias: &[0, 1, 2, 3, 4, 5, 6],
            stages: &[stage; 7],
        },
    );
    b.finish().expect("valid tiny model")
}

/// `bytes` copied to an address that is `skew` bytes past a word boundary.
fn placed(bytes: &[u8], skew: usize) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; bytes.len() + 8];
    let at = buf.as_ptr().align_offset(4) + skew;
    buf[at..at + bytes.len()].copy_from_slice(bytes);
    (buf, at)
}

#[test]
fn widened_weights_give_the_same_logits_and_foreign_ones_are_refused() {
    let bytes = model_with_channels(8);
    let m = Model::from_bytes(&bytes).expect("valid");
    // Layers 1-2 by default (8 input channels, 144 and 36 quads; layer 3 serves 9); layers 1-3
    // as asked below; never the first (one input channel) nor the dense one.
    assert_eq!(crate::wide::default_mask(&m), 0b0110);
    let n = crate::wide::len(&m, 0b1110).expect("len");
    assert_eq!(n, crate::wide::HEADER + 3 * 2 * 8 * 9 * 8);
    let mut wide = vec![0u8; n];
    assert_eq!(crate::wide::write(&m, 0b1110, &mut wide), Ok(n));
    let (buf, at) = placed(&wide, 0);
    let mw = m
        .clone()
        .with_wide(&buf[at..at + n])
        .expect("its own companion");
    let mut arena = vec![0i8; m.arena_size()];
    for seed in 0..4usize {
        let face: Vec<u8> = (0..2304)
            .map(|i| ((i * 7 + seed * 91) % 256) as u8)
            .collect();
        assert_eq!(
            mw.run(&face, &mut arena),
            m.run(&face, &mut arena),
            "face {seed}"
        );
    }
    let refused = |bytes: &[u8], skew: usize| {
        let (buf, at) = placed(bytes, skew);
        match m.clone().with_wide(&buf[at..at + bytes.len()]) {
            Err(Error::Wide(p)) => p,
            other => panic!("accepted or other error: {other:?}"),
        }
    };
    let mut changed = wide.clone();
    changed[crate::wide::HEADER + 2 * 8 * 9 * 8 + 5] ^= 1;
    assert_eq!(refused(&changed, 0), WideProblem::Values { layer: 2 });
    let mut other = wide.clone();
    other[12] ^= 0xff;
    assert_eq!(refused(&other, 0), WideProblem::OtherModel);
    assert_eq!(
        refused(&wide[..n - 16], 0),
        WideProblem::Length {
            expected: n,
            got: n - 16
        }
    );
    assert_eq!(refused(&wide, 1), WideProblem::Misaligned);
    assert_eq!(refused(b"FERQ", 0), WideProblem::Header);
    let mut version = wide.clone();
    version[4] = 9;
    assert_eq!(
        refused(&version, 0),
        WideProblem::Version {
            found: 9,
            reads: crate::wide::VERSION
        }
    );
    let mut mask = wide.clone();
    mask[8] |= 1;
    assert_eq!(refused(&mask, 0), WideProblem::Mask { layer: 0 });
    assert_eq!(
        crate::wide::len(&m, 1 << 4),
        Err(Error::Wide(WideProblem::Mask { layer: 4 }))
    );
    assert_eq!(
        crate::wide::write(&m, 0b1110, &mut wide[..40]),
        Err(Error::Wide(WideProblem::Length {
            expected: n,
            got: 40
        }))
    );
    let message = Error::Wide(WideProblem::Values { layer: 2 }).to_string();
    assert!(message.contains("layer 2's values differ"), "{message}");
}

/// The host SIMD dot product (SSE2 / NEON) against the plain one and an i64 sum: every length
/// 0-300 at unaligned starts, with `b` longer than `a`, on random bytes and on the extremes
/// (-128·-128 and -128·127 in every lane, the largest sums a layer can see).
#[test]
fn host_simd_dot_is_the_reference_bit_for_bit() {
    let mut r = 0x2545_f491_4f6c_dd1du64;
    let mut byte = || {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r as u8
    };
    let random: Vec<u8> = (0..320).map(|_| byte()).collect();
    let fills: [(Vec<u8>, Vec<u8>); 3] = [
        (random.iter().rev().copied().collect(), random.clone()),
        (vec![0x80; 320], vec![0x80; 320]),
        (vec![0x80; 320], vec![0x7f; 320]),
    ];
    for (a_bytes, b) in &fills {
        let a: Vec<i8> = a_bytes.iter().map(|&v| v as i8).collect();
        for start in 0..4 {
            for len in 0..=300 {
                let (a, b) = (&a[start..start + len], &b[start..start + len + 7]);
                let naive: i64 = a
                    .iter()
                    .zip(b)
                    .map(|(&x, &w)| i64::from(x) * i64::from(w as i8))
                    .sum();
                assert_eq!(
                    i64::from(reference::dot_reference(a, b)),
                    naive,
                    "reference, length {len}"
                );
                assert_eq!(
                    dot::dot(a, b),
                    reference::dot_reference(a, b),
                    "length {len}, start {start}"
                );
            }
        }
    }
}

/// The model fuzzer's seeds (`fuzz/seeds/model_parser` at the repository's root): the tiny model
/// and one with eight channels (whose layers can have pre-widened weights).
/// `WRITE_FUZZ_SEED=1 cargo test -p edge-runtime` rewrites them.
#[test]
fn fuzz_seeds_are_the_small_models() {
    let dir = package_dir().join("../fuzz/seeds/model_parser");
    for (name, model) in [
        ("tiny.bin", tiny_model()),
        ("eight_channels.bin", model_with_channels(8)),
    ] {
        let path = dir.join(name);
        if std::env::var_os("WRITE_FUZZ_SEED").is_some() {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(&path, &model).expect("write seed");
        }
        let seed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(seed, model, "{name}");
        assert!(Model::from_bytes(&seed).is_ok());
    }
}

#[test]
fn tiny_model_runs_and_reports_its_arena() {
    let bytes = tiny_model();
    let m = Model::from_bytes(&bytes).expect("valid");
    assert_eq!(m.layers().len(), 5);
    // Largest layer: 48*48*1 in + 24*24*2 out; then the patch of the widest conv input (2).
    assert_eq!(m.arena_size(), 2304 + 1152 + conv::scratch_bytes(2, true));
    let mut arena = vec![0i8; m.arena_size()];
    let face: Vec<u8> = (0..2304).map(|i| (i * 7 % 256) as u8).collect();
    let a = m.run(&face, &mut arena).expect("runs");
    let b = m
        .run(&face, &mut vec![0i8; 100_000])
        .expect("runs with a bigger arena");
    assert_eq!(a, b);
    assert_eq!(
        m.run(&face[..100], &mut arena),
        Err(Error::InputSize {
            expected: 2304,
            got: 100
        })
    );
    assert_eq!(
        m.run(&face, &mut arena[..10]),
        Err(Error::ArenaTooSmall {
            needed: m.arena_size(),
            got: 10
        })
    );
}

fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crate::crc32::crc32(&bytes[crate::format::PREAMBLE..]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn damaged_files_get_specific_errors() {
    let good = tiny_model();
    let err = |b: &[u8]| Model::from_bytes(b).expect_err("must be rejected");
    assert!(matches!(err(&good[..10]), Error::Truncated { .. }));
    assert!(matches!(
        err(&good[..good.len() - 1]),
        Error::Truncated { .. }
    ));
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(err(&longer), Error::TrailingBytes { extra: 1 });
    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(err(&magic), Error::BadMagic);
    // A short file of another kind is named by its magic, not called truncated.
    assert_eq!(err(b"hello"), Error::BadMagic);
    assert!(matches!(err(b"FER"), Error::Truncated { .. }));
    let mut version = good.clone();
    version[4] = 9;
    assert_eq!(
        err(&version),
        Error::UnsupportedVersion {
            found: 9,
            supported: 1
        }
    );
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(err(&flipped), Error::ChecksumMismatch { .. }));
    // A consistent checksum over a garbled table: the table is rejected, not trusted.
    let mut table = good.clone();
    for b in &mut table[20..40] {
        *b = 0xFF;
    }
    assert!(matches!(
        err(&with_crc(table)),
        Error::BadHeader | Error::BadIo | Error::BadLayer { .. } | Error::LayerCount { .. }
    ));
}

#[test]
fn inconsistent_tables_are_rejected() {
    let good = tiny_model();
    let m = Model::from_bytes(&good).expect("valid");
    let data = &good[good.len() - m.weight_bytes()..];
    let check = |f: &dyn Fn(&mut crate::format::Header)| {
        let mut h = m.header.clone();
        f(&mut h);
        crate::format::encode(&h, data).expect_err("must be rejected")
    };
    assert_eq!(
        check(&|h| h.layers[1].in_c = 3),
        Error::ShapeMismatch { layer: 1 }
    );
    assert_eq!(
        check(&|h| h.layers[2].weights.offset = 1_000_000),
        Error::BadBlob { layer: 2 }
    );
    assert_eq!(check(&|h| h.layers[0].in_h = 47), Error::BadIo);
    assert_eq!(check(&|h| h.layers[4].out_c = 6), Error::BadIo);
    assert_eq!(check(&|h| h.layers[0].input.zero = 0), Error::BadIo);
    assert_eq!(
        check(&|h| h.layers.clear()),
        Error::LayerCount {
            count: 0,
            max: crate::format::MAX_LAYERS
        }
    );
    assert_eq!(
        check(&|h| h.layers[3].input.zero = 5),
        Error::ShapeMismatch { layer: 3 }
    );
}

#[test]
fn unsafe_requantization_is_rejected() {
    let mut b = Builder::default();
    let desc = |kind, in_c, out_c, pool| LayerDesc {
        kind,
        in_h: if kind == Kind::Dense { 1 } else { 48 },
        in_w: if kind == Kind::Dense { 1 } else { 48 },
        in_c,
        out_c,
        relu: false,
        pool,
        input: QParams {
            scale: 1.0,
            zero: -128,
        },
        output: QParams {
            scale: 1.0,
            zero: -128,
        },
        weights: Blob { offset: 0, len: 0 },
        bias: Blob { offset: 0, len: 0 },
        stages: Blob { offset: 0, len: 0 },
    };
    let bad = Stage {
        m: i32::MAX,
        n: 0,
        b: 0,
    };
    b.push(
        desc(Kind::Conv3x3, 1, 1, true),
        &LayerParams {
            weights: &[1; 9],
            bias: &[0],
            stages: &[bad],
        },
    );
    b.push(
        desc(Kind::Dense, 576, 7, false),
        &LayerParams {
            weights: &[1; 576 * 7],
            bias: &[0; 7],
            stages: &[Stage { m: 1, n: 1, b: 0 }; 7],
        },
    );
    assert_eq!(
        b.finish().expect_err("shift 0"),
        Error::BadRequant {
            layer: 0,
            channel: 0
        }
    );

    let mut b = Builder::default();
    b.push(
        desc(Kind::Conv3x3, 1, 1, true),
        &LayerParams {
            weights: &[1; 9],
            bias: &[i32::MAX],
            stages: &[Stage { m: 1, n: 1, b: 0 }],
        },
    );
    b.push(
        desc(Kind::Dense, 576, 7, false),
        &LayerParams {
            weights: &[1; 576 * 7],
            bias: &[0; 7],
            stages: &[Stage { m: 1, n: 1, b: 0 }; 7],
        },
    );
    assert_eq!(
        b.finish().expect_err("overflow"),
        Error::AccumulatorOverflow {
            layer: 0,
            channel: 0
        }
    );
}

#[test]
fn every_fast_kernel_agrees_with_its_reference() {
    let n = crate::kernels::conformance::run().expect("conformance");
    assert!(n > 600, "{n} cases");
}

/// Flip test-time augmentation: the sum of the image's and its mirror's logits, so a face and
/// its mirror image get the same result, and a left-right symmetric face twice its own logits.
#[test]
fn mirrored_runs_sum_a_face_and_its_mirror() {
    let bytes = tiny_model();
    let m = Model::from_bytes(&bytes).expect("valid");
    let mut arena = vec![0i8; m.arena_size()];
    let face: Vec<u8> = (0..2304)
        .map(|i| ((i * 7 + i / 48 * 13) % 256) as u8)
        .collect();
    let mirror: Vec<u8> = face
        .chunks_exact(48)
        .flat_map(|row| row.iter().rev().copied())
        .collect();
    let a = m.run_mirrored(&face, &mut arena).expect("runs");
    let plain = m.run(&face, &mut arena).expect("runs").0;
    let flipped = m.run(&mirror, &mut arena).expect("runs").0;
    assert_eq!(
        a.0,
        core::array::from_fn(|i| i16::from(plain[i]) + i16::from(flipped[i]))
    );
    assert_eq!(m.run_mirrored(&mirror, &mut arena), Ok(a));
    let symmetric: Vec<u8> = (0..2304)
        .map(|i| {
            let (x, y) = (i % 48, i / 48);
            ((x.min(47 - x) * 9 + y * 3) % 256) as u8
        })
        .collect();
    let once = m.run(&symmetric, &mut arena).expect("runs").0;
    let twice = m.run_mirrored(&symmetric, &mut arena).expect("runs");
    assert_eq!(twice.0, once.map(|v| 2 * i16::from(v)));
    assert_eq!(twice.argmax(), crate::Logits(once).argmax());
    assert_eq!(
        m.run_mirrored(&face[..100], &mut arena),
        Err(Error::InputSize {
            expected: 2304,
            got: 100
        })
    );
}
