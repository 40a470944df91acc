//! One conformance check for every fast kernel against its plain twin, `no_std` and without
//! heap, so the same cases run in the host unit tests, under qemu-aarch64 (`.ci/run`) and in the
//! QEMU Cortex-M7 firmware before its golden run: the dot product on every length 0-67, the quad
//! dot product on every channel count the network has (and odd ones), whole pooled conv layers
//! with borders, odd sizes, both signs of the stage multiplier and extreme values, dense layers
//! of every input length 1-67, and the output stage's shortcut on every shift.

use super::cases::Cases;
use super::conv::{conv3x3, conv3x3_reference, scratch_bytes};
use super::dense::{dense, dense_reference};
use super::dot::dot;
use super::im2col::fill;
use super::patch::patch_bytes;
use super::quad::{quad_dot, quad_dot_wide};
use super::reference::{dot_reference, quad_dot_reference};
use super::shape::ConvShape;
use super::single::conv3x3_pairs;
use super::widened::widen_into;
use crate::requant::{Stage, STAGE_BYTES};

/// The first case where a fast kernel and its reference disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Which kernel: "dot", "quad_dot", "conv3x3", "dense", "stage" or (on the M7)
    /// "depthwise_row", "pointwise_quad", "window_outputs", "stage_strided", "max_i8x4".
    pub kernel: &'static str,
    /// The case's number within that kernel's cases.
    pub case: usize,
}

fn as_i8(bytes: &[u8], out: &mut [i8]) {
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = b as i8;
    }
}

/// Bytes on an 8-byte boundary (pre-widened weights are read with `LDRD`).
#[repr(C, align(8))]
struct Aligned<const N: usize>([u8; N]);

/// int8 values on an 8-byte boundary (a patch the M7 kernels read with `LDRD`).
#[cfg(all(feature = "dsp", target_arch = "arm"))]
#[repr(C, align(8))]
struct AlignedI8<const N: usize>([i8; N]);

const MAX_CIN: usize = 128;
const MAX_K: usize = 9 * MAX_CIN;

/// Runs every case; returns how many agreed.
///
/// # Errors
/// The first [`Mismatch`].
pub fn run() -> Result<usize, Mismatch> {
    let mut cases = Cases::new();
    let mut n = 0;
    n += dots(&mut cases)?;
    n += quads(&mut cases)?;
    n += convs(&mut cases)?;
    n += denses(&mut cases)?;
    n += stages(&mut cases)?;
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        n += depthwise_rows(&mut cases)?;
        n += pointwise_quads(&mut cases)?;
        n += windows(&mut cases)?;
        n += strided(&mut cases)?;
    }
    Ok(n)
}

/// A random stage with a shift of at least 32 (as the detector's convolutions have), exact for
/// every accumulator below 2^24 in magnitude, and its 32-bit form.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn high_stage(cases: &mut Cases) -> (Stage, crate::requant::HighStage) {
    let m = cases.next() as i32;
    let n = 32 + cases.next() % 24;
    let b = (i64::from(cases.next() as i32) << 20) >> (cases.next() % 16);
    let stage = Stage { m, n, b };
    debug_assert!(stage.is_safe_for(1 << 24));
    (stage, stage.high().expect("n >= 32"))
}

/// The M7's pointwise quad (four pixels widened into a patch by `im2col::fill_rows`, a block
/// of output channels by the `LDRD`/`SMLAD` loop, the stage, strided stores) against the sums
/// of `x − z` times the weights computed plainly: 16-64 input channels, both ReLU settings.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn pointwise_quads(cases: &mut Cases) -> Result<usize, Mismatch> {
    use super::dsp::pointwise_quad;
    use super::im2col::fill_rows;
    use crate::requant::HighStage;
    const CIN: usize = 64;
    const M: usize = 8;
    const STRIDE: usize = M + 3;
    let mut bytes = [0u8; 4 * CIN];
    let mut input = [0i8; 4 * CIN];
    let mut w = Aligned([0u8; M * CIN]);
    let mut wide = Aligned([0u8; 2 * M * CIN]);
    let mut patch = AlignedI8([0i8; 8 * CIN]);
    let mut out = [0i8; 3 * STRIDE + M];
    let mut n = 0;
    for case in 0..32 {
        let cin = 16 * (1 + case / 4 % 4);
        let relu = case % 2 == 0;
        cases.fill(&mut bytes[..4 * cin], case < 4);
        as_i8(&bytes, &mut input);
        cases.fill(&mut w.0[..M * cin], case < 4);
        let zero = match case % 3 {
            0 => -128,
            1 => 127,
            _ => i32::from(cases.next() as i8),
        };
        let bias: [i32; M] =
            core::array::from_fn(|_| (cases.next() % 2_000_000) as i32 - 1_000_000);
        let mut stages = [Stage { m: 0, n: 32, b: 0 }; M];
        let mut high = [HighStage {
            m: 0,
            shift: 0,
            b: 0,
        }; M];
        for (s, h) in stages.iter_mut().zip(high.iter_mut()) {
            (*s, *h) = high_stage(cases);
        }
        let rows: [&[i8]; 4] = core::array::from_fn(|r| &input[r * cin..][..cin]);
        fill_rows(rows, zero, &mut patch.0);
        let params = (&bias[..], &high[..]);
        // Int8 weights in even cases, pre-widened ones (`widen_words`, checked through the sums
        // against the int8 weights) in odd cases.
        let ws = &w.0[..M * cin];
        super::dsp::widen_words(ws, &mut wide.0[..2 * M * cin]);
        let wd = &wide.0[..2 * M * cin];
        match (relu, case % 4 < 2) {
            (true, true) => {
                pointwise_quad::<true, false>(&patch.0, ws, cin, params, &mut out, STRIDE)
            }
            (false, true) => {
                pointwise_quad::<false, false>(&patch.0, ws, cin, params, &mut out, STRIDE)
            }
            (true, false) => {
                pointwise_quad::<true, true>(&patch.0, wd, cin, params, &mut out, STRIDE)
            }
            (false, false) => {
                pointwise_quad::<false, true>(&patch.0, wd, cin, params, &mut out, STRIDE)
            }
        }
        for (r, row) in rows.iter().enumerate() {
            for j in 0..M {
                let acc = row
                    .iter()
                    .zip(&w.0[j * cin..][..cin])
                    .fold(bias[j], |a, (&x, &wt)| {
                        a + (i32::from(x) - zero) * i32::from(wt as i8)
                    });
                if out[r * STRIDE + j] != stages[j].output(acc, relu) {
                    return Err(Mismatch {
                        kernel: "pointwise_quad",
                        case,
                    });
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The M7's 3x3 window kernel (the stem: five `SMLAD`s per channel on packed taps, the stage in
/// the same loop) against the nine products summed plainly: windows of pixels 0-255 and of the
/// whole int16 range, both ReLU settings.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn windows(cases: &mut Cases) -> Result<usize, Mismatch> {
    use super::dsp::{window_outputs, WindowChannel};
    use super::taps::pack_taps;
    const M: usize = 12;
    let mut n = 0;
    for case in 0..64 {
        let window: [i32; 9] = core::array::from_fn(|_| match case % 3 {
            0 => i32::from(cases.next() as u8),
            1 => i32::from(cases.next() as i16),
            _ => 255,
        });
        let mut channels = [WindowChannel::default(); M];
        let mut want = [0i8; M];
        for (ch, want) in channels.iter_mut().zip(want.iter_mut()) {
            let k: [i32; 9] = core::array::from_fn(|_| i32::from(cases.next() as i8));
            let bias = (cases.next() % 2_000_000) as i32 - 1_000_000;
            let (stage, high) = high_stage(cases);
            *ch = WindowChannel::new(pack_taps(k), bias, high);
            let acc = (0..9).fold(bias, |a, t| a + k[t] * window[t]);
            *want = stage.output(acc, case % 2 == 0);
        }
        let mut got = [0i8; M];
        let used = 1 + case % M;
        if case % 2 == 0 {
            window_outputs::<true>(pack_taps(window), &channels[..used], &mut got);
        } else {
            window_outputs::<false>(pack_taps(window), &channels[..used], &mut got);
        }
        if got[..used] != want[..used] || got[used..].iter().any(|&v| v != 0) {
            return Err(Mismatch {
                kernel: "window_outputs",
                case,
            });
        }
        n += used;
    }
    Ok(n)
}

/// The M7's strided helpers of the depthwise layer and the max pool: the stage over a row of
/// sums into every `stride`-th byte, the gather of every `stride`-th byte as int16, and the
/// bytewise signed maximum (`SSUB8`/`SEL`), against their definitions.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn strided(cases: &mut Cases) -> Result<usize, Mismatch> {
    use super::dsp::{gather_i16, max_i8x4, stage_strided};
    let mut n = 0;
    let mut out = [0i8; 5 * 40];
    let mut sums = [0i32; 40];
    let mut wide = [0u8; 80];
    for case in 0..40 {
        let (len, stride) = (1 + case, 1 + case % 5);
        for s in sums.iter_mut() {
            *s = (cases.next() >> (case % 12)) as i32 >> 8;
        }
        let (stage, high) = high_stage(cases);
        let relu = case % 2 == 0;
        let inner = (cases.next() % 200_000) as i32 - 100_000;
        if relu {
            stage_strided::<true>(&sums[..len], inner, high, &mut out, stride);
        } else {
            stage_strided::<false>(&sums[..len], inner, high, &mut out, stride);
        }
        gather_i16(&out, stride, &mut wide[..2 * len]);
        for (i, &sum) in sums[..len].iter().enumerate() {
            let q = stage.output(inner + sum, relu);
            let g = i16::from_le_bytes([wide[2 * i], wide[2 * i + 1]]);
            if out[i * stride] != q || g != i16::from(q) {
                return Err(Mismatch {
                    kernel: "stage_strided",
                    case,
                });
            }
            n += 1;
        }
        let (a, b) = (cases.next(), cases.next());
        let want = u32::from_le_bytes(core::array::from_fn(|k| {
            let (x, y) = ((a >> (8 * k)) as i8, (b >> (8 * k)) as i8);
            x.max(y) as u8
        }));
        if max_i8x4(a, b) != want {
            return Err(Mismatch {
                kernel: "max_i8x4",
                case,
            });
        }
        n += 1;
    }
    Ok(n)
}

/// The M7's depthwise row kernel (`SMLAD` on int16 pairs read from three gathered rows, two
/// outputs per pass) against the nine products summed plainly: rows of 2-254 outputs, values
/// and weights over the whole int8 range.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn depthwise_rows(cases: &mut Cases) -> Result<usize, Mismatch> {
    use super::dsp::{depthwise_row, DW_ROW_BYTES};
    use super::taps::pack_taps;
    let mut rows = [0u8; 3 * DW_ROW_BYTES];
    let mut sums = [0i32; DW_ROW_BYTES / 2 - 2];
    let mut n = 0;
    for case in 0..48 {
        let outs = 2 + 2 * ((case * 37) % (DW_ROW_BYTES / 4 - 2));
        let extremes = case % 3 == 0;
        let value = |cases: &mut Cases| {
            if extremes {
                -128
            } else {
                i32::from(cases.next() as i8)
            }
        };
        for r in 0..3 {
            for x in 0..outs + 2 {
                let v = value(cases) as i16;
                rows[r * DW_ROW_BYTES + 2 * x..][..2].copy_from_slice(&v.to_le_bytes());
            }
        }
        let k: [i32; 9] = core::array::from_fn(|_| value(cases));
        depthwise_row(&rows, pack_taps(k), &mut sums[..outs]);
        for (x, &got) in sums[..outs].iter().enumerate() {
            let v = |r: usize, dx: usize| {
                let at = r * DW_ROW_BYTES + 2 * (x + dx);
                i32::from(i16::from_le_bytes([rows[at], rows[at + 1]]))
            };
            let want = (0..9).fold(0, |a, t| a + k[t] * v(t / 3, t % 3));
            if got != want {
                return Err(Mismatch {
                    kernel: "depthwise_row",
                    case,
                });
            }
            n += 1;
        }
    }
    Ok(n)
}

/// The output stage's two shift paths (by 32 then by `n − 32`, or by `n` at once) against its
/// plain definition, on every shift 1-62, both signs, and accumulators up to what the stage is
/// safe for.
fn stages(cases: &mut Cases) -> Result<usize, Mismatch> {
    let mut count = 0;
    for n in 1..=62u32 {
        for round in 0..16 {
            let m = (cases.next() >> 1) as i32;
            let m = if round % 2 == 1 { -m } else { m } >> (round % 8);
            let b = (i64::from(cases.next()) << 31 | i64::from(cases.next())) >> (round % 30);
            let b = if round % 3 == 0 { -b } else { b };
            let stage = Stage { m, n, b };
            for acc in [0, 1, -1, i32::MAX, i32::MIN + 1, cases.next() as i32] {
                if !stage.is_safe_for(u64::from(acc.unsigned_abs())) {
                    continue;
                }
                if stage.apply(acc) != stage.apply_reference(acc) {
                    return Err(Mismatch {
                        kernel: "stage",
                        case: count,
                    });
                }
                count += 1;
            }
        }
    }
    Ok(count)
}

fn denses(cases: &mut Cases) -> Result<usize, Mismatch> {
    const N: usize = 67;
    const OUT: usize = 3;
    let mut input_bytes = [0u8; N];
    let mut input = [0i8; N];
    let mut weights = [0u8; N * OUT];
    let mut bias = [0u8; 4 * OUT];
    let mut stages = [0u8; STAGE_BYTES * OUT];
    let mut scratch = [0i8; super::dense::scratch_bytes(N)];
    let (mut fast, mut plain) = ([0i8; OUT], [0i8; OUT]);
    let mut count = 0;
    for n in 1..=N {
        cases.fill(&mut input_bytes, n % 8 == 1);
        as_i8(&input_bytes, &mut input);
        cases.fill(&mut weights, n % 8 == 1);
        for c in 0..OUT {
            let b = (cases.next() % 2_001) as i32 - 1_000;
            bias[4 * c..4 * c + 4].copy_from_slice(&b.to_le_bytes());
            let m = (1i32 << 30) + (cases.next() >> 2) as i32 % (1 << 29);
            let stage = Stage {
                m: if c == 1 { -m } else { m },
                n: 38,
                b: 1i64 << 37,
            };
            stages[STAGE_BYTES * c..][..STAGE_BYTES].copy_from_slice(&stage.to_le_bytes());
        }
        let zero = i32::from(cases.next() as i8);
        let relu = n % 3 != 0;
        let (x, w) = (&input[..n], &weights[..n * OUT]);
        dense(x, w, &bias, &stages, zero, relu, &mut fast, &mut scratch);
        dense_reference(x, w, &bias, &stages, zero, relu, &mut plain);
        if fast != plain {
            return Err(Mismatch {
                kernel: "dense",
                case: count,
            });
        }
        count += 1;
    }
    Ok(count)
}

fn dots(cases: &mut Cases) -> Result<usize, Mismatch> {
    let (mut a, mut b) = ([0u8; 67], [0u8; 67]);
    let mut ai = [0i8; 67];
    let mut n = 0;
    for round in 0..8 {
        for len in 0..=a.len() {
            cases.fill(&mut a, round == 0);
            cases.fill(&mut b, round == 0);
            as_i8(&a, &mut ai);
            if dot(&ai[..len], &b) != dot_reference(&ai[..len], &b) {
                return Err(Mismatch {
                    kernel: "dot",
                    case: n,
                });
            }
            n += 1;
        }
    }
    Ok(n)
}

fn quads(cases: &mut Cases) -> Result<usize, Mismatch> {
    let mut input_bytes = [0u8; 16 * MAX_CIN];
    let mut input = [0i8; 16 * MAX_CIN];
    let mut weights = [0u8; MAX_K + 3];
    let mut patch = [0i8; patch_bytes(MAX_CIN)];
    let mut wide = Aligned([0u8; 2 * MAX_K + 8]);
    let mut n = 0;
    for (round, cin) in [1usize, 2, 3, 4, 5, 7, 8, 9, 16, 32, 64, 128]
        .into_iter()
        .cycle()
        .take(36)
        .enumerate()
    {
        // A 4x4 map: the quad at (0, 0) has the top and left borders, at (2, 2) the bottom
        // and right ones, at (1, 1) none.
        let (h, w) = (4, 4);
        cases.fill(&mut input_bytes[..h * w * cin], round < 12);
        as_i8(&input_bytes, &mut input);
        cases.fill(&mut weights[..9 * cin + 3], round < 12);
        let zero = match round % 3 {
            0 => -128,
            1 => 127,
            _ => i32::from(cases.next() as i8),
        };
        for at in [(0, 0), (1, 1), (2, 2)] {
            fill(&input[..h * w * cin], (h, w, cin), zero, at, &mut patch);
            let p = &patch[..patch_bytes(cin)];
            // The weights at four byte offsets: one of them is word-aligned (the M7 kernel
            // reads those with LDRD, the others word by word).
            for skew in 0..4 {
                let ws = &weights[skew..];
                if quad_dot(p, cin, ws) != quad_dot_reference(p, cin, ws) {
                    return Err(Mismatch {
                        kernel: "quad_dot",
                        case: n,
                    });
                }
                n += 1;
            }
            // Pre-widened weights, where a layer can have them: aligned (the `LDRD` loop) and
            // two bytes off (the fallback).
            if (9 * cin).is_multiple_of(8) {
                let k = 9 * cin;
                for skew in [0, 2] {
                    widen_into(&weights[..k], &mut wide.0[skew..skew + 2 * k]);
                    let ws = &wide.0[skew..skew + 2 * k];
                    if quad_dot_wide(p, ws) != quad_dot_reference(p, cin, &weights) {
                        return Err(Mismatch {
                            kernel: "quad_dot_wide",
                            case: n,
                        });
                    }
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

fn convs(cases: &mut Cases) -> Result<usize, Mismatch> {
    const CIN: usize = 12;
    const COUT: usize = 4;
    const SIDE: usize = 7;
    let mut input_bytes = [0u8; SIDE * SIDE * CIN];
    let mut input = [0i8; SIDE * SIDE * CIN];
    let mut weights = [0u8; COUT * 9 * CIN];
    let mut bias = [0u8; 4 * COUT];
    let mut stages = [0u8; STAGE_BYTES * COUT];
    let mut scratch = [0i8; scratch_bytes(CIN, true)];
    let (mut fast, mut plain) = ([0i8; SIDE * SIDE * COUT], [0i8; SIDE * SIDE * COUT]);
    let mut wide = Aligned([0u8; 2 * COUT * 9 * CIN]);
    let mut n = 0;
    for round in 0..36 {
        let h = 2 + round % 6;
        let w = 2 + (round / 2) % 6;
        // The last twelve with one input channel (the first layer's own kernel).
        let cin = if round < 24 { 1 + (round * 5) % CIN } else { 1 };
        let relu = round % 4 != 3;
        cases.fill(&mut input_bytes, round < 4);
        as_i8(&input_bytes, &mut input);
        cases.fill(&mut weights, round < 4);
        for c in 0..COUT {
            let b = (cases.next() % 20_001) as i32 - 10_000;
            bias[4 * c..4 * c + 4].copy_from_slice(&b.to_le_bytes());
            // |M| around 2^-10 of either sign, offsets of ±100 LSB; the shift is ≥ 32 as in the
            // published model.
            let m = (1i32 << 30) + (cases.next() >> 2) as i32 % (1 << 29);
            let m = if c % 2 == 1 { -m } else { m };
            let shift = 40;
            let off = i64::from(cases.next() % 201) - 100;
            let stage = Stage {
                m,
                n: shift,
                b: (off << shift) + (1i64 << (shift - 1)),
            };
            stages[STAGE_BYTES * c..][..STAGE_BYTES].copy_from_slice(&stage.to_le_bytes());
        }
        let s = ConvShape {
            h,
            w,
            cin,
            cout: COUT,
            input_zero: i32::from(cases.next() as i8),
            relu,
            pool: true,
        };
        let out_len = (h / 2) * (w / 2) * COUT;
        let (x, wts) = (&input[..h * w * cin], &weights[..COUT * 9 * cin]);
        conv3x3(
            x,
            wts,
            &bias,
            &stages,
            &s,
            &mut fast[..out_len],
            &mut scratch,
            None,
        );
        conv3x3_reference(x, wts, &bias, &stages, &s, &mut plain[..out_len]);
        if fast[..out_len] != plain[..out_len] {
            return Err(Mismatch {
                kernel: "conv3x3",
                case: n,
            });
        }
        n += 1;
        // The one-channel kernel's pair version (the Cortex-M one) on every target.
        if cin == 1 {
            fast.fill(0);
            conv3x3_pairs(x, wts, &bias, &stages, &s, &mut fast[..out_len]);
            if fast[..out_len] != plain[..out_len] {
                return Err(Mismatch {
                    kernel: "conv3x3 one channel, pairs",
                    case: n,
                });
            }
            n += 1;
        }
        // With pre-widened weights, where the layer can have them (eight input channels here).
        if cin > 1 && (9 * cin).is_multiple_of(8) {
            let ww = &mut wide.0[..2 * wts.len()];
            widen_into(wts, ww);
            fast.fill(0);
            let out = &mut fast[..out_len];
            conv3x3(x, wts, &bias, &stages, &s, out, &mut scratch, Some(ww));
            if fast[..out_len] != plain[..out_len] {
                return Err(Mismatch {
                    kernel: "conv3x3 wide",
                    case: n,
                });
            }
            n += 1;
        }
    }
    Ok(n)
}
