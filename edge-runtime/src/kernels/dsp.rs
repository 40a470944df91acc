//! The Armv7E-M DSP dot product (Cortex-M4/M7, feature `dsp`): four int8 products per two
//! `SMLAD`s. Tested bit for bit against [`super::reference::dot_reference`] on the emulated Cortex-M7
//! (the QEMU firmware's self-check and golden vectors).
#![allow(unsafe_code)]

use core::arch::asm;

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
    let acc = quad_dot_by4(&patch[..128 * fours], &w[..16 * fours]);
    quad_dot_by1(&patch[128 * fours..], &w[16 * fours..4 * groups], acc)
}

/// [`quad_dot`]'s main loop: `w` word-aligned, a multiple of 16 bytes; `patch` word-aligned,
/// 8 bytes per weight byte.
#[inline(always)]
fn quad_dot_by4(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
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
    let acc = quad_dot_wide_by4(&patch[..128 * fours], &w[..32 * fours]);
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
fn quad_dot_wide_by4(patch: &[i8], w: &[u8]) -> [i32; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
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

/// The sums of one output row of a 3x3 depthwise channel: `sums[x] = inner + Σ k·v` for the
/// interior output columns `1 ..= sums.len()`, from three input rows gathered as int16
/// (little-endian, row `r` at byte `r · DW_ROW_BYTES` of `rows`, at least `sums.len() + 2`
/// values each) and the nine weights packed as `(w0, w1) (w3, w4) (w6, w7) (w2, w5) (w8, 0)`.
/// Per output: three `SMLAD`, three `SMLAxy` and six loads of value pairs straight from the
/// rows (unaligned halfword pairs, which the M7 reads in one `LDR`).
#[inline]
pub fn depthwise_row(rows: &[u8], k: [u32; 5], inner: i32, sums: &mut [i32]) {
    let n = sums.len();
    if n == 0 {
        return;
    }
    assert!(rows.len() >= 2 * DW_ROW_BYTES + 2 * (n + 2) && 2 * (n + 2) <= DW_ROW_BYTES);
    let [k01, k34, k67, k25, k8] = k;
    // SAFETY: the loop runs `n` ≥ 1 times; pass `x` reads 4 bytes at offsets 2x, 2x + 2 of each
    // of the three rows (at 0, DW_ROW_BYTES and 2·DW_ROW_BYTES from `rows`), all below
    // 2·DW_ROW_BYTES + 2(n + 2) ≤ rows.len() (asserted), and writes one i32 of `sums` (n of them).
    // LDR of a 2-aligned word is allowed on Armv7-M normal memory. Only the named registers and
    // the flags are written; SMLAD/SMLAxy may set the sticky Q flag, which nothing reads.
    unsafe {
        asm!(
            "2:",
            "ldr {t}, [{p}]",
            "smlad {acc}, {t}, {k01}, {inner}",
            "ldr {t}, [{p}, #2]",
            "smlatb {acc}, {t}, {k25}, {acc}",
            "ldr {t}, [{p}, #512]",
            "smlad {acc}, {t}, {k34}, {acc}",
            "ldr {t}, [{p}, #514]",
            "smlatt {acc}, {t}, {k25}, {acc}",
            "ldr {t}, [{p}, #1024]",
            "smlad {acc}, {t}, {k67}, {acc}",
            "ldr {t}, [{p}, #1026]",
            "smlatb {acc}, {t}, {k8}, {acc}",
            "adds {p}, {p}, #2",
            "str {acc}, [{s}], #4",
            "cmp {s}, {end}",
            "bne 2b",
            t = out(reg) _,
            acc = out(reg) _,
            p = inout(reg) rows.as_ptr() => _,
            s = inout(reg) sums.as_mut_ptr() => _,
            end = in(reg) sums.as_mut_ptr().wrapping_add(n),
            k01 = in(reg) k01,
            k34 = in(reg) k34,
            k67 = in(reg) k67,
            k25 = in(reg) k25,
            k8 = in(reg) k8,
            inner = in(reg) inner,
            options(nostack),
        );
    }
}
