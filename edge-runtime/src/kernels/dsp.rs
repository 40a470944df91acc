//! The Armv7E-M DSP dot product (Cortex-M4/M7, feature `dsp`): four int8 products per two
//! `SMLAD`s. Tested bit for bit against [`super::reference::dot_reference`] on the emulated Cortex-M7
//! (the QEMU firmware's self-check and golden vectors).
#![allow(unsafe_code)]

use core::arch::asm;

use crate::requant::HighStage;

/// One weight word's part of the quad loop with int8 weights, as assembly text: sign-extend the
/// word held in operand `$w` into its pairs (bytes 0 and 2 into `we`, 1 and 3 into `$w`), then
/// for each of the four rows one `LDRD` of its two int16 pairs and two `SMLAD`s.
macro_rules! byte_group {
    ($w:literal) => {
        concat!(
            "sxtb16 {we}, {",
            $w,
            "}\n",
            "sxtb16 {",
            $w,
            "}, {",
            $w,
            "}, ror #8\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a0}, {t0}, {we}, {a0}\n",
            "smlad {a0}, {t1}, {",
            $w,
            "}, {a0}\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a1}, {t0}, {we}, {a1}\n",
            "smlad {a1}, {t1}, {",
            $w,
            "}, {a1}\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a2}, {t0}, {we}, {a2}\n",
            "smlad {a2}, {t1}, {",
            $w,
            "}, {a2}\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a3}, {t0}, {we}, {a3}\n",
            "smlad {a3}, {t1}, {",
            $w,
            "}, {a3}\n",
        )
    };
}

/// One group of four pre-widened weights in the quad loop, as assembly text: one `LDRD` of its
/// two int16 pairs, then for each of the four rows one `LDRD` of the row's pairs and two
/// `SMLAD`s.
macro_rules! wide_group {
    () => {
        concat!(
            "ldrd {w0}, {w1}, [{wp}], #8\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a0}, {t0}, {w0}, {a0}\n",
            "smlad {a0}, {t1}, {w1}, {a0}\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a1}, {t0}, {w0}, {a1}\n",
            "smlad {a1}, {t1}, {w1}, {a1}\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a2}, {t0}, {w0}, {a2}\n",
            "smlad {a2}, {t1}, {w1}, {a2}\n",
            "ldrd {t0}, {t1}, [{p}], #8\n",
            "smlad {a3}, {t0}, {w0}, {a3}\n",
            "smlad {a3}, {t1}, {w1}, {a3}\n",
        )
    };
}

/// Bytes 0 and 2 of `x`, sign-extended into the two halfwords.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-to-register instruction of Armv7E-M (the `dsp` feature is only for such
    // targets): it reads `x`, writes `r`, touches no memory, stack or flags.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 1 and 3 of `x`, sign-extended into the two halfwords.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: as in `sxtb16`; the rotation is part of the same register-only instruction.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// The four bytewise signed maxima of `a` and `b` (`SSUB8` sets a flag per byte where `a ≥ b`,
/// `SEL` takes those bytes from `a`, the others from `b`).
#[inline(always)]
pub fn max_i8x4(a: u32, b: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only Armv7E-M instructions: they read `a` and `b`, write `r` and a
    // scratch register, and the GE flags (not declared preserved); no memory or stack.
    unsafe {
        asm!("ssub8 {t}, {a}, {b}", "sel {r}, {a}, {b}", t = out(reg) _, r = lateout(reg) r,
             a = in(reg) a, b = in(reg) b, options(pure, nomem, nostack));
    }
    r
}

/// Whole groups of four int8 weights of `w` widened into `out` as int16 pairs `w0 w2`, `w1 w3`
/// (`kernels::widened`'s layout): one `SXTB16` per pair.
pub fn widen_words(w: &[u8], out: &mut [u8]) {
    for (g, o) in w.as_chunks::<4>().0.iter().zip(out.as_chunks_mut::<8>().0) {
        let x = u32::from_le_bytes(*g);
        let pairs = u64::from(sxtb16(x)) | (u64::from(sxtb16_ror8(x)) << 32);
        *o = pairs.to_le_bytes();
    }
}

/// `acc + a.lo·b.lo + a.hi·b.hi` on signed halfwords.
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only Armv7E-M instruction; it may set the sticky Q flag on overflow (so
    // flags are not declared preserved), which nothing here reads. The sums of a valid model
    // never overflow (see `dot`).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// Same result as [`super::reference::dot_reference`].
#[inline]
pub fn dot(a: &[i8], b: &[u8]) -> i32 {
    let b = &b[..a.len()];
    // Whole words are read as `[_; 4]` arrays: one unaligned `LDR` each on Armv7-M.
    let (xs, x_rest) = a.as_chunks::<4>();
    let (ws, w_rest) = b.as_chunks::<4>();
    let mut acc = 0i32;
    for (x, w) in xs.iter().zip(ws) {
        let x = u32::from_le_bytes(x.map(|v| v as u8));
        let w = u32::from_le_bytes(*w);
        acc = smlad(sxtb16(x), sxtb16(w), acc);
        acc = smlad(sxtb16_ror8(x), sxtb16_ror8(w), acc);
    }
    acc + super::reference::dot_reference(x_rest, w_rest)
}

/// The four rows' products with the weights `w` (whole words: the first `w.len()` values of
/// each row) for a patch in the `SMLAD` layout ([`super::patch`]: groups of four values per row,
/// stored `v0 v2 v1 v3`, the four rows' groups one after the other). Per weight word: two
/// `SXTB16` (bytes 0 and 2, bytes 1 and 3), then for each row one `LDRD` of its two int16 pairs
/// and two `SMLAD`s. With word-aligned weights four words go per pass, read with two `LDRD`s: 60
/// instructions per 64 multiply-accumulates with the loop ([`quad_dot_by4`]); the rest, or
/// unaligned weights, one word per pass (17 per 16).
#[inline(always)]
pub fn quad_dot(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let groups = w.len() / 4;
    let patch = &patch[..32 * groups];
    if groups == 0 || !(patch.as_ptr() as usize).is_multiple_of(4) {
        // An unaligned patch cannot be read with LDRD (the conv kernel aligns it; this keeps
        // the function correct for any caller).
        return quad_dot_words(patch, &w[..4 * groups]);
    }
    let fours = if (w.as_ptr() as usize).is_multiple_of(4) {
        groups / 4
    } else {
        0
    };
    let acc = quad_dot_by4(&patch[..128 * fours], &w[..16 * fours], [0; 4]);
    quad_dot_by1(&patch[128 * fours..], &w[16 * fours..4 * groups], acc)
}

/// One quad of four pixels through a block of a pointwise (1x1) layer's output channels: for
/// channel `j`, the four sums `bias[j] + Σ row_r · w_j` over the quad's patch (the four pixels'
/// `x − z` in the `SMLAD` layout, [`super::patch`]) by [`quad_dot`]'s `LDRD`/`SMLAD` loop,
/// then `out[r·stride + j] = stages[j]` of sum `r` (after the ReLU when `RELU`, [`stage4`]).
/// The weights `w` are the block's `cin` int8 weights per channel, or with `WIDE` the same
/// pre-widened ([`super::widened`]: int16, `2·cin` bytes per channel, read ready to multiply).
/// `cin` is a non-zero multiple of 16 and `w` word-aligned (what the caller checks once per
/// layer), so no channel needs the one-word loop or an alignment test.
///
/// # Panics
/// If the shapes or alignments are not those (the caller's contract).
#[inline(always)]
pub fn pointwise_quad<const RELU: bool, const WIDE: bool>(
    patch: &[i8],
    w: &[u8],
    cin: usize,
    (bias, stages): (&[i32], &[HighStage]),
    out: &mut [i8],
    stride: usize,
) {
    let m = bias.len();
    let row = if WIDE { 2 * cin } else { cin };
    assert!(
        cin > 0
            && cin.is_multiple_of(16)
            && stages.len() == m
            && w.len() == m * row
            && (w.as_ptr() as usize).is_multiple_of(4)
            && patch.len() >= 8 * cin
            && (patch.as_ptr() as usize).is_multiple_of(4)
            && m > 0
            && stride >= m
            && out.len() > 3 * stride + m - 1
    );
    let patch = &patch[..8 * cin];
    for (j, (cw, (&b, st))) in w.chunks_exact(row).zip(bias.iter().zip(stages)).enumerate() {
        let acc = if WIDE {
            quad_dot_wide_by4(patch, cw, [b; 4])
        } else {
            quad_dot_by4(patch, cw, [b; 4])
        };
        // SAFETY: `j < m` and `out.len() > 3·stride + m − 1` (asserted), so the four bytes
        // `j + r·stride` (r ≤ 3) that `stage4` writes are inside `out`.
        unsafe { stage4::<RELU>(acc, st, out.as_mut_ptr().add(j), stride) };
    }
}

/// The ReLU of the register named `$r` as assembly text (`relu`: `r & !(r >> 31)`), or nothing
/// (`plain`): the one difference between a kernel's two variants.
macro_rules! relu_text {
    (relu, $r:literal) => {
        concat!("bic {", $r, "}, {", $r, "}, {", $r, "}, asr #31\n")
    };
    (plain, $r:literal) => {
        ""
    };
}

/// One output stage step of [`stage4`] as assembly text: the ReLU (`$kind`: `relu` or `plain`)
/// on `$a`, the stage's `b` as the 64-bit start, `+ a · m` (`SMLAL`), the high word shifted and
/// saturated.
macro_rules! stage_step {
    ($kind:ident, $a:literal) => {
        concat!(
            relu_text!($kind, $a),
            "ldrd {lo}, {hi}, [{st}, #8]\n",
            "smlal {lo}, {hi}, {",
            $a,
            "}, {m}\n",
            "asr {hi}, {hi}, {sh}\n",
            "ssat {hi}, #8, {hi}\n",
        )
    };
}

/// The four stage steps and their stores of [`stage4`] as one `asm!`, `$kind` `relu` or
/// `plain`, `$args` the four sums, the stage, the output and its stride.
macro_rules! stage4_asm {
    ($kind:ident, $args:expr) => {{
        let ([a0, a1, a2, a3], st, o, stride) = $args;
        asm!(
            "ldr {m}, [{st}]\n",
            "ldr {sh}, [{st}, #4]\n",
            stage_step!($kind, "a0"),
            "strb {hi}, [{o}]\n",
            stage_step!($kind, "a1"),
            "strb {hi}, [{o}, {stride}]\n",
            "add {o}, {o}, {stride}, lsl #1\n",
            stage_step!($kind, "a2"),
            "strb {hi}, [{o}]\n",
            stage_step!($kind, "a3"),
            "strb {hi}, [{o}, {stride}]\n",
            a0 = inout(reg) a0 => _, a1 = inout(reg) a1 => _, a2 = inout(reg) a2 => _,
            a3 = inout(reg) a3 => _,
            st = in(reg) st, o = inout(reg) o => _, stride = in(reg) stride,
            m = out(reg) _, sh = out(reg) _, lo = out(reg) _, hi = out(reg) _,
            options(nostack, preserves_flags),
        )
    }};
}

/// `o[r·stride] = stage(acc[r])` for the four sums of a quad (after the ReLU when `RELU`): per
/// sum one `LDRD` of `b`, `SMLAL`, a shift, a saturation and a store, the stage's `m` and shift
/// loaded once.
///
/// # Safety
/// `o`, `o + stride`, `o + 2·stride` and `o + 3·stride` must be writable bytes.
#[inline(always)]
unsafe fn stage4<const RELU: bool>(acc: [i32; 4], st: &HighStage, o: *mut i8, stride: usize) {
    // SAFETY: the four stores are the bytes the caller vouches for; the loads read the three
    // fields of `st` (a `repr(C)` struct: `m` at 0, `shift` at 4, `b` at 8, 8-aligned, so the
    // LDRD is allowed). Only the named registers are written; no flags, no stack.
    unsafe {
        if RELU {
            stage4_asm!(relu, (acc, st, o, stride));
        } else {
            stage4_asm!(plain, (acc, st, o, stride));
        }
    }
}

/// One output channel of a 3x3 convolution over a one-channel input, as [`window_outputs`]
/// reads it: the kernel packed by [`pack_taps`](super::taps::pack_taps), the bias, and the
/// [`HighStage`] (`m`, `shift`, `b` low word, `b` high word): ten words, so one pointer walks
/// the channels.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct WindowChannel([u32; 10]);

impl WindowChannel {
    /// The channel of the kernel `k` (packed by [`pack_taps`](super::taps::pack_taps)).
    pub fn new(k: [u32; 5], bias: i32, stage: HighStage) -> Self {
        let b = stage.b as u64;
        WindowChannel([
            k[0],
            k[1],
            k[2],
            k[3],
            k[4],
            bias as u32,
            stage.m as u32,
            stage.shift,
            b as u32,
            (b >> 32) as u32,
        ])
    }
}

/// The channel loop of [`window_outputs`] as one `asm!`, `$kind` `relu` or `plain` (the ReLU of
/// the sum before the stage), `$args` the window, the channels, the output and its end.
macro_rules! window_loop {
    ($kind:ident, $args:expr) => {{
        let ([w0, w1, w2, w3, w4], pp, o, e) = $args;
        asm!(
            "2:\n",
            "ldrd {t0}, {t1}, [{pp}]\n",
            "ldr {acc}, [{pp}, #20]\n",
            "smlad {acc}, {w0}, {t0}, {acc}\n",
            "smlad {acc}, {w1}, {t1}, {acc}\n",
            "ldrd {t0}, {t1}, [{pp}, #8]\n",
            "smlad {acc}, {w2}, {t0}, {acc}\n",
            "smlad {acc}, {w3}, {t1}, {acc}\n",
            "ldr {t0}, [{pp}, #16]\n",
            "smlad {acc}, {w4}, {t0}, {acc}\n",
            relu_text!($kind, "acc"),
            "ldrd {t0}, {t1}, [{pp}, #32]\n",
            "ldr {t2}, [{pp}, #24]\n",
            "smlal {t0}, {t1}, {acc}, {t2}\n",
            "ldr {t2}, [{pp}, #28]\n",
            "adds {pp}, {pp}, #40\n",
            "asr {t1}, {t1}, {t2}\n",
            "ssat {t1}, #8, {t1}\n",
            "strb {t1}, [{o}], #1\n",
            "cmp {o}, {e}\n",
            "bne 2b\n",
            w0 = in(reg) w0, w1 = in(reg) w1, w2 = in(reg) w2, w3 = in(reg) w3,
            w4 = in(reg) w4,
            pp = inout(reg) pp => _,
            o = inout(reg) o => _,
            e = in(reg) e,
            acc = out(reg) _, t0 = out(reg) _, t1 = out(reg) _, t2 = out(reg) _,
            options(nostack),
        )
    }};
}

/// One 3x3 window (packed by [`pack_taps`](super::taps::pack_taps)) through a block of output channels: `out[j] =`
/// the stage of `bias + Σ window · kernel` of `channels[j]` (after the ReLU when `RELU`): per
/// channel five `SMLAD`s, one `SMLAL`, a shift and a saturation, 20 instructions with the loop
/// (21 with the ReLU), the window in registers throughout. Writes `min(out.len(),
/// channels.len())` outputs.
#[inline]
pub fn window_outputs<const RELU: bool>(
    window: [u32; 5],
    channels: &[WindowChannel],
    out: &mut [i8],
) {
    let n = out.len().min(channels.len());
    if n == 0 {
        return;
    }
    // SAFETY: the loop runs `n` ≥ 1 times; pass `j` reads the ten words of `channels[j]` (at
    // `pp`, word-aligned as `WindowChannel` is, so LDRD is allowed) and writes the byte
    // `out[j]`, then advances `pp` by one channel and `o` by one byte: `j < n ≤` both lengths.
    // Only the named registers and the flags are written (SMLAD may set the sticky Q flag,
    // which nothing reads; a valid file's sums never overflow).
    unsafe {
        let args = (
            window,
            channels.as_ptr(),
            out.as_mut_ptr(),
            out.as_mut_ptr().wrapping_add(n),
        );
        if RELU {
            window_loop!(relu, args);
        } else {
            window_loop!(plain, args);
        }
    }
}

/// One output of [`stage_strided`]'s loop as assembly text, `$kind` `relu` or `plain`.
macro_rules! strided_step {
    ($kind:ident) => {
        concat!(
            "ldr {acc}, [{src}], #4\n",
            "add {acc}, {acc}, {inner}\n",
            relu_text!($kind, "acc"),
            "mov {lo}, {blo}\n",
            "mov {hi}, {bhi}\n",
            "smlal {lo}, {hi}, {acc}, {m}\n",
            "asr {hi}, {hi}, {sh}\n",
            "ssat {hi}, #8, {hi}\n",
            "strb {hi}, [{o}]\n",
            "add {o}, {o}, {stride}\n",
        )
    };
}

/// [`stage_strided`]'s loop, two outputs per pass, `$kind` `relu` or `plain`, `$args`
/// the sums' start and end, the output, its stride, `inner` and the stage's `(m, shift, b low,
/// b high)`.
macro_rules! strided_loop {
    ($kind:ident, $args:expr) => {{
        let (src, end, o, stride, inner, (m, sh, blo, bhi)) = $args;
        asm!(
            "2:",
            strided_step!($kind),
            strided_step!($kind),
            "cmp {src}, {end}",
            "bne 2b",
            src = inout(reg) src => _,
            end = in(reg) end,
            o = inout(reg) o => _,
            stride = in(reg) stride,
            inner = in(reg) inner,
            m = in(reg) m,
            sh = in(reg) sh,
            blo = in(reg) blo,
            bhi = in(reg) bhi,
            acc = out(reg) _, lo = out(reg) _, hi = out(reg) _,
            options(nostack),
        )
    }};
}

/// `out[i·stride] = stage(inner + sums[i])` (after the ReLU when `RELU`) for every sum: one
/// output row of a depthwise channel (`inner`: its bias and the zero point's share) into its
/// HWC map. Two outputs per pass, everything in registers: ten instructions per output with the
/// ReLU and the loop, eleven with it.
///
/// # Panics
/// If `out` is shorter than `(sums.len() − 1)·stride + 1`.
pub fn stage_strided<const RELU: bool>(
    sums: &[i32],
    inner: i32,
    stage: HighStage,
    out: &mut [i8],
    stride: usize,
) {
    let Some(last) = sums.len().checked_sub(1) else {
        return;
    };
    assert!(out.len() > last * stride);
    let pairs = sums.len() / 2;
    if pairs > 0 {
        let b = stage.b as u64;
        // SAFETY: the loop runs `pairs` ≥ 1 times; each pass reads two i32 at `src` (within the
        // first `2·pairs ≤ sums.len()` of `sums`) and writes the bytes at `o` and `o + stride`,
        // `o` starting at `out` and advancing by `stride` per output: the last byte written is
        // `(2·pairs − 1)·stride ≤ last·stride < out.len()` (asserted). Only the named registers
        // and the flags are written.
        unsafe {
            let args = (
                sums.as_ptr(),
                sums.as_ptr().wrapping_add(2 * pairs),
                out.as_mut_ptr(),
                stride,
                inner,
                (stage.m, stage.shift, b as u32, (b >> 32) as u32),
            );
            if RELU {
                strided_loop!(relu, args);
            } else {
                strided_loop!(plain, args);
            }
        }
    }
    if sums.len() % 2 == 1 {
        out[last * stride] = stage.output::<RELU>(inner + sums[last]);
    }
}

/// `dst[i] = src[i·stride]` widened to int16 (little-endian pairs of `dst`), for `i <
/// dst.len() / 2`: one channel of an HWC map row gathered for [`depthwise_row`].
///
/// # Panics
/// If `src` is shorter than `(n − 1)·stride + 1` for `n = dst.len() / 2` values.
pub fn gather_i16(src: &[i8], stride: usize, dst: &mut [u8]) {
    let n = dst.len() / 2;
    let Some(last) = n.checked_sub(1) else {
        return;
    };
    assert!(src.len() > last * stride);
    for (i, d) in dst.chunks_exact_mut(2).enumerate() {
        // SAFETY: `i ≤ last` and `src.len() > last·stride` (asserted).
        let v = unsafe { *src.get_unchecked(i * stride) };
        d.copy_from_slice(&i16::from(v).to_le_bytes());
    }
}

/// [`quad_dot`]'s main loop, adding to `acc`: `w` word-aligned, a multiple of 16 bytes;
/// `patch` word-aligned, 8 bytes per weight byte.
#[inline(always)]
fn quad_dot_by4(patch: &[i8], w: &[u8], acc: [i32; 4]) -> [i32; 4] {
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    if w.is_empty() {
        return [a0, a1, a2, a3];
    }
    debug_assert!(w.len().is_multiple_of(16) && patch.len() == 8 * w.len());
    // SAFETY: the loop runs `w.len() / 16` ≥ 1 times (the caller passes a multiple of 16 and
    // the length is not 0); each pass reads 16 bytes at `wp` (two LDRDs, within `w`) and 128 at
    // `p` (16 LDRDs, within `patch`, which is 8 bytes per weight byte), then both have advanced
    // by exactly that: it never reads past either slice. Both start word-aligned (checked by
    // `quad_dot`) and move by multiples of 8, so every LDRD is word-aligned as the Cortex-M
    // requires. It writes only the named registers (no memory, no stack) and the flags.
    unsafe {
        asm!(
            "2:",
            "ldrd {w0}, {w1}, [{wp}], #8",
            byte_group!("w0"),
            byte_group!("w1"),
            "ldrd {w0}, {w1}, [{wp}], #8",
            byte_group!("w0"),
            byte_group!("w1"),
            "cmp {wp}, {wend}",
            "bne 2b",
            w0 = out(reg) _,
            w1 = out(reg) _,
            we = out(reg) _,
            t0 = out(reg) _,
            t1 = out(reg) _,
            p = inout(reg) patch.as_ptr() => _,
            wp = inout(reg) w.as_ptr() => _,
            wend = in(reg) w.as_ptr().wrapping_add(w.len()),
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// [`quad_dot`] with pre-widened weights ([`crate::wide`]: each group of four as the int16
/// pairs `w0 w2`, `w1 w3`, the patch's own pairing): per group one `LDRD` of the weights, then
/// for each row one `LDRD` of its pairs and two `SMLAD`s, four groups per pass: 54 instructions
/// per 64 multiply-accumulates with the loop. `w` is a multiple of 16 bytes; a patch or weights
/// that are not word-aligned (never from the inference path: both are aligned there) take the
/// plain loop.
#[inline(always)]
pub fn quad_dot_wide(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let groups = w.len() / 8;
    let patch = &patch[..32 * groups];
    if !(patch.as_ptr() as usize).is_multiple_of(4) || !(w.as_ptr() as usize).is_multiple_of(4) {
        return super::reference::quad_dot_wide_reference(patch, &w[..8 * groups]);
    }
    let fours = groups / 4;
    let acc = quad_dot_wide_by4(&patch[..128 * fours], &w[..32 * fours], [0; 4]);
    if 4 * fours == groups {
        // Every layer with a multiple of 16 input channels (all of the paper's network).
        return acc;
    }
    let rest = super::reference::quad_dot_wide_reference(
        &patch[128 * fours..],
        &w[32 * fours..8 * groups],
    );
    core::array::from_fn(|r| acc[r] + rest[r])
}

/// [`quad_dot_wide`]'s loop: `w` word-aligned, a multiple of 32 bytes; `patch` word-aligned,
/// 4 bytes per weight byte.
#[inline(always)]
fn quad_dot_wide_by4(patch: &[i8], w: &[u8], acc: [i32; 4]) -> [i32; 4] {
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    if w.is_empty() {
        return [a0, a1, a2, a3];
    }
    debug_assert!(w.len().is_multiple_of(32) && patch.len() == 4 * w.len());
    // SAFETY: the loop runs `w.len() / 32` ≥ 1 times (the caller passes a multiple of 32 and
    // the length is not 0); each pass reads 32 bytes at `wp` (four LDRDs, within `w`) and 128 at
    // `p` (16 LDRDs, within `patch`, which is 4 bytes per weight byte), then both have advanced
    // by exactly that: it never reads past either slice. Both start word-aligned (checked by
    // `quad_dot_wide`) and move by multiples of 8, so every LDRD is word-aligned as the
    // Cortex-M requires. It writes only the named registers (no memory, no stack) and the flags.
    unsafe {
        asm!(
            "2:",
            wide_group!(),
            wide_group!(),
            wide_group!(),
            wide_group!(),
            "cmp {wp}, {wend}",
            "bne 2b",
            w0 = out(reg) _,
            w1 = out(reg) _,
            t0 = out(reg) _,
            t1 = out(reg) _,
            p = inout(reg) patch.as_ptr() => _,
            wp = inout(reg) w.as_ptr() => _,
            wend = in(reg) w.as_ptr().wrapping_add(w.len()),
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// [`quad_dot`]'s one-word loop, adding to `acc`: `w` whole words (any alignment), `patch`
/// word-aligned, 8 bytes per weight byte.
#[inline(always)]
fn quad_dot_by1(patch: &[i8], w: &[u8], acc: [i32; 4]) -> [i32; 4] {
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    let groups = w.len() / 4;
    if groups == 0 {
        return acc;
    }
    let patch = &patch[..32 * groups];
    // SAFETY: the loop runs `groups` ≥ 1 times; each pass reads one word at `wp` (within the
    // `4·groups` bytes of `w`; LDR allows any alignment) and 32 bytes at `p` (within the
    // `32·groups` bytes of `patch`, sliced above), then advances both: it never reads past
    // either slice. `p` starts 4-byte aligned (checked by `quad_dot`) and moves by 8, so every
    // LDRD is word-aligned as the Cortex-M requires. It writes only the named registers (no
    // memory, no stack) and the flags.
    unsafe {
        asm!(
            "2:",
            "ldr {w}, [{wp}], #4",
            byte_group!("w"),
            "cmp {wp}, {wend}",
            "bne 2b",
            w = out(reg) _,
            we = out(reg) _,
            t0 = out(reg) _,
            t1 = out(reg) _,
            p = inout(reg) patch.as_ptr() => _,
            wp = inout(reg) w.as_ptr() => _,
            wend = in(reg) w.as_ptr().wrapping_add(4 * groups),
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// The values `x − zero` of int8 `src` (a multiple of four) as int16 in the `SMLAD` pairing
/// ([`super::patch`]): group `j` of four values goes to bytes `32·j .. 32·j + 8` of `dst`, as
/// `v0 v2 v1 v3`. Per group one load, two `SXTAB16` (sign-extend bytes 0 and 2, or 1 and 3, and
/// add `−zero` to both halfwords: exact, `|x − zero| ≤ 255`) and two stores.
#[inline]
pub fn widen_groups(src: &[i8], zero: i32, dst: &mut [i8]) {
    let minus_zero = (-zero as u16 as u32) * 0x0001_0001;
    for (x, d) in src.as_chunks::<4>().0.iter().zip(dst.chunks_mut(32)) {
        let x = u32::from_le_bytes(x.map(|v| v as u8));
        let even = sxtab16(minus_zero, x).to_le_bytes();
        let odd = sxtab16_ror8(minus_zero, x).to_le_bytes();
        for (d, v) in d[..8].iter_mut().zip(even.into_iter().chain(odd)) {
            *d = v as i8;
        }
    }
}

/// `acc + (bytes 0 and 2 of x, sign-extended)` on halfwords.
#[inline(always)]
fn sxtab16(acc: u32, x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-to-register Armv7E-M instruction: reads `acc` and `x`, writes `r`,
    // touches no memory, stack or flags.
    unsafe {
        asm!("sxtab16 {r}, {acc}, {x}", r = lateout(reg) r, acc = in(reg) acc, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `acc + (bytes 1 and 3 of x, sign-extended)` on halfwords.
#[inline(always)]
fn sxtab16_ror8(acc: u32, x: u32) -> u32 {
    let r: u32;
    // SAFETY: as in `sxtab16`; the rotation is part of the same register-only instruction.
    unsafe {
        asm!("sxtab16 {r}, {acc}, {x}, ror #8", r = lateout(reg) r, acc = in(reg) acc,
             x = in(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// [`quad_dot`] without `LDRD`, for a patch at any address.
fn quad_dot_words(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let word = |b: &[i8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]].map(|v| v as u8));
    let mut acc = [0i32; 4];
    for (w, group) in w.as_chunks::<4>().0.iter().zip(patch.chunks_exact(32)) {
        let w = u32::from_le_bytes(*w);
        let (even, odd) = (sxtb16(w), sxtb16_ror8(w));
        for (a, row) in acc.iter_mut().zip(group.chunks_exact(8)) {
            *a = smlad(word(&row[4..]), odd, smlad(word(row), even, *a));
        }
    }
    acc
}

/// `Σ x[i] · w[i]` of an int16 vector `x` (little-endian, each group of four stored
/// `v0 v2 v1 v3`, word-aligned for the `LDRD`s; at least `w.len()` rounded up to 4 values) and
/// int8 weights `w`: per four weights one load, two `SXTB16`, one `LDRD` and two `SMLAD`.
#[inline]
pub fn row_dot(x: &[i8], w: &[u8]) -> i32 {
    let words = w.len() / 4;
    let x = &x[..2 * w.len().div_ceil(4) * 4];
    let mut acc = 0i32;
    if words > 0 && (x.as_ptr() as usize).is_multiple_of(4) {
        // SAFETY: the loop runs `words` ≥ 1 times; each pass reads one word at `wp` (within the
        // `4·words` bytes of `w`) and 8 bytes at `p` (within the `8·words` bytes of `x`, which
        // holds at least that many), then advances both. `p` starts 4-byte aligned (checked)
        // and moves by 8, so every LDRD is word-aligned. It writes only the named registers and
        // the flags.
        unsafe {
            asm!(
                "2:",
                "ldr {w}, [{wp}], #4",
                "sxtb16 {we}, {w}",
                "sxtb16 {w}, {w}, ror #8",
                "ldrd {t0}, {t1}, [{p}], #8",
                "smlad {acc}, {t0}, {we}, {acc}",
                "smlad {acc}, {t1}, {w}, {acc}",
                "cmp {wp}, {wend}",
                "bne 2b",
                w = out(reg) _,
                we = out(reg) _,
                t0 = out(reg) _,
                t1 = out(reg) _,
                p = inout(reg) x.as_ptr() => _,
                wp = inout(reg) w.as_ptr() => _,
                wend = in(reg) w.as_ptr().wrapping_add(4 * words),
                acc = inout(reg) acc,
                options(nostack, readonly),
            );
        }
    } else {
        let word = |b: &[i8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]].map(|v| v as u8));
        for (wv, xv) in w.as_chunks::<4>().0.iter().zip(x.chunks_exact(8)) {
            let wv = u32::from_le_bytes(*wv);
            acc = smlad(
                word(&xv[4..]),
                sxtb16_ror8(wv),
                smlad(word(xv), sxtb16(wv), acc),
            );
        }
    }
    // The last partial group, undoing the pairing.
    for i in 4 * words..w.len() {
        let at = 2 * ((i & !3) | [0, 2, 1, 3][i & 3]);
        let v = i16::from_le_bytes([x[at] as u8, x[at + 1] as u8]);
        acc += i32::from(v) * i32::from(w[i] as i8);
    }
    acc
}

/// `acc + a.half · b.half` on signed halfwords, the halves chosen by `A_TOP` and `B_TOP`
/// (`SMLABB`, `SMLABT`, `SMLATB`, `SMLATT`).
#[inline(always)]
pub fn smla<const A_TOP: bool, const B_TOP: bool>(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only Armv7E-M instructions (one is chosen at compile time): they read
    // `a`, `b`, `acc`, write `r`, touch no memory or stack; they may set the sticky Q flag on
    // overflow (flags not declared preserved), which nothing reads, and a valid model's sums
    // never overflow.
    unsafe {
        match (A_TOP, B_TOP) {
            (false, false) => asm!("smlabb {r}, {a}, {b}, {acc}", r = lateout(reg) r,
                a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack)),
            (false, true) => asm!("smlabt {r}, {a}, {b}, {acc}", r = lateout(reg) r,
                a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack)),
            (true, false) => asm!("smlatb {r}, {a}, {b}, {acc}", r = lateout(reg) r,
                a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack)),
            (true, true) => asm!("smlatt {r}, {a}, {b}, {acc}", r = lateout(reg) r,
                a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack)),
        }
    }
    r
}

/// `acc + a.lo·b.lo + a.hi·b.hi` on signed halfwords (`SMLAD`).
#[inline(always)]
pub fn pair_mac(a: u32, b: u32, acc: i32) -> i32 {
    smlad(a, b, acc)
}

/// Bytes between the three gathered rows [`depthwise_row`] reads (room for 256 int16 values).
pub const DW_ROW_BYTES: usize = 512;

/// The sums of one output row of a 3x3 depthwise channel: `sums[x] = Σ k·v` for the output
/// columns `0 .. sums.len()` (an even count; the caller discards a last column it does not
/// need), from three input rows gathered as int16 (little-endian, slot `r` at byte `r ·
/// DW_ROW_BYTES` of `rows`, at least `sums.len() + 2` values each: a column of padding on either
/// side) and the nine weights packed by [`pack_taps`](super::taps::pack_taps). Two outputs per pass share their loads:
/// per pair nine loads of value pairs straight from the rows (unaligned halfword pairs, which
/// the M7 reads in one `LDR`), six `SMUAD`/`SMLAD` and six `SMLAxy`, 25 instructions with the
/// loop. The bias and the zero point's share are added by the stage ([`stage_strided`]).
#[inline]
pub fn depthwise_row(rows: &[u8], k: [u32; 5], sums: &mut [i32]) {
    let n = sums.len();
    if n == 0 {
        return;
    }
    assert!(
        n.is_multiple_of(2)
            && rows.len() >= 2 * DW_ROW_BYTES + 2 * (n + 2)
            && 2 * (n + 2) <= DW_ROW_BYTES
    );
    let [k01, k34, k67, k25, k8] = k;
    // SAFETY: the loop runs `n / 2` ≥ 1 times; the pass for columns `x, x + 1` reads 4 bytes
    // at offsets 2x, 2x + 2 and 2x + 4 of each of the three slots (at 0, DW_ROW_BYTES and
    // 2·DW_ROW_BYTES from `rows`), all below 2·DW_ROW_BYTES + 2(n + 2) ≤ rows.len()
    // (asserted), and writes two i32 of `sums` (n of them in all, an even count). LDR of a
    // 2-aligned word is allowed on Armv7-M normal memory, and so is STRD to `sums` (i32,
    // word-aligned). Only the named registers and the flags are written; SMLAD/SMLAxy may set
    // the sticky Q flag, which nothing reads.
    unsafe {
        asm!(
            "2:",
            "ldr {t0}, [{p}]",
            "ldr {t1}, [{p}, #2]",
            "smuad {a0}, {t0}, {k01}",
            "smuad {a1}, {t1}, {k01}",
            "smlatb {a0}, {t1}, {k25}, {a0}",
            "ldr {t0}, [{p}, #4]",
            "smlatb {a1}, {t0}, {k25}, {a1}",
            "ldr {t0}, [{p}, #512]",
            "ldr {t1}, [{p}, #514]",
            "smlad {a0}, {t0}, {k34}, {a0}",
            "smlad {a1}, {t1}, {k34}, {a1}",
            "smlatt {a0}, {t1}, {k25}, {a0}",
            "ldr {t0}, [{p}, #516]",
            "smlatt {a1}, {t0}, {k25}, {a1}",
            "ldr {t0}, [{p}, #1024]",
            "ldr {t1}, [{p}, #1026]",
            "smlad {a0}, {t0}, {k67}, {a0}",
            "smlad {a1}, {t1}, {k67}, {a1}",
            "smlatb {a0}, {t1}, {k8}, {a0}",
            "ldr {t0}, [{p}, #1028]",
            "smlatb {a1}, {t0}, {k8}, {a1}",
            "adds {p}, {p}, #4",
            "strd {a0}, {a1}, [{s}], #8",
            "cmp {s}, {end}",
            "bne 2b",
            t0 = out(reg) _,
            t1 = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            p = inout(reg) rows.as_ptr() => _,
            s = inout(reg) sums.as_mut_ptr() => _,
            end = in(reg) sums.as_mut_ptr().wrapping_add(n),
            k01 = in(reg) k01,
            k34 = in(reg) k34,
            k67 = in(reg) k67,
            k25 = in(reg) k25,
            k8 = in(reg) k8,
            options(nostack),
        );
    }
}
