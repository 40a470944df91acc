//! Layer kernels, written to be read and checked and tested against an even simpler unfused
//! formulation. A pooled conv layer builds each pool quad's input patch ([`patch`]) and takes
//! four dot products per channel at once ([`quad::quad_dot`]); the first layer, with one input
//! channel, has its own kernel ([`single`]); dense layers use [`dot::dot`].
//! With the `dsp` feature on Armv7E-M both inner loops are the `SMLAD` versions in `dsp`, on
//! x86-64 and aarch64 hosts the SSE2 / NEON versions in `simd`; these two files hold the crate's
//! only `unsafe`. Each fast kernel has its plain twin in the crate, and [`conformance::run`]
//! compares them on the same cases everywhere (host tests, qemu-aarch64, the QEMU firmware).

pub(crate) mod cases;
pub mod conformance;
pub mod conv;
pub mod dense;
pub mod dot;
#[cfg(all(feature = "dsp", target_arch = "arm"))]
pub(crate) mod dsp;
pub mod im2col;
pub mod patch;
pub mod quad;
pub mod reference;
pub mod shape;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) mod simd;
pub mod single;
pub mod taps;
pub mod widened;

/// Reads int32 value `i` of a little-endian blob.
#[inline]
pub(crate) fn i32_at(bytes: &[u8], i: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[4 * i..4 * i + 4]);
    i32::from_le_bytes(b)
}

/// Reads output stage `i` of a stage blob.
#[inline]
pub(crate) fn stage_at(bytes: &[u8], i: usize) -> crate::requant::Stage {
    let mut b = [0u8; crate::requant::STAGE_BYTES];
    b.copy_from_slice(&bytes[i * crate::requant::STAGE_BYTES..][..crate::requant::STAGE_BYTES]);
    crate::requant::Stage::from_le_bytes(&b)
}
