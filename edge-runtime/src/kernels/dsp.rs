//! The Armv7E-M DSP dot product (Cortex-M4/M7, feature `dsp`): four int8 products per two
//! `SMLAD`s. Tested bit for bit against [`super::dot::dot_reference`] on the emulated Cortex-M7
//! (the QEMU firmware's self-check and golden vectors).
#![allow(unsafe_code)]

use core::arch::asm;

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

/// Same result as [`super::dot::dot_reference`].
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
    acc + super::dot::dot_reference(x_rest, w_rest)
}
