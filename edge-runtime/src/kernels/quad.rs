//! The four accumulators of one output channel over a pool quad: the dot products of the four
//! rows of a [`super::patch`] with the channel's int8 weights. Every weight word is loaded once
//! for four outputs. Exact integer arithmetic: `|x − z| ≤ 255`, `|w| ≤ 128`, and a valid model's
//! sums fit in i32 (checked at load), so every version gives the plain loop's result
//! ([`super::reference::quad_dot_reference`]).

use super::reference::quad_dot_exact;

/// `[Σ_i row_r[i] · w[i]]` for the four rows of `patch` (a quad's patch for `cin` input
/// channels) and the channel's `9·cin` weights `w` (int8 bytes).
///
/// Whole groups of eight values go through the `SMLAD` version (`kernels::dsp`) with the `dsp`
/// feature on Arm, the SSE2 / NEON version (`kernels::simd`) on x86-64 and aarch64, the plain
/// loop elsewhere; the rest (the first layer's `9·1`) through the plain loop.
#[inline]
pub fn quad_dot(patch: &[i8], cin: usize, w: &[u8]) -> [i32; 4] {
    quad_dot_exact(patch, cin, w, quad_dot_padded)
}

/// [`quad_dot`] over all `padded_len(cin)` values of the rows: `w` holds that many weights (a
/// multiple of 8), those past the channel's `9·cin` multiplying the patch's zeros.
#[inline(always)]
pub fn quad_dot_padded(patch: &[i8], w: &[u8]) -> [i32; 4] {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        super::dsp::quad_dot(patch, w)
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        super::simd::quad_dot(patch, w)
    }
    #[cfg(not(any(
        all(feature = "dsp", target_arch = "arm"),
        target_arch = "x86_64",
        target_arch = "aarch64"
    )))]
    {
        super::reference::quad_partial(patch, w, 0)
    }
}

/// [`quad_dot_padded`] with the channel's weights pre-widened ([`crate::wide`]: int16, twice
/// `9·cin` bytes, a multiple of 16): the `SMLAD` kernel loads them ready to multiply. Other
/// targets compute the same sums with the plain loop (they never receive widened weights from
/// the inference path; tests call this on them).
#[inline(always)]
pub fn quad_dot_wide(patch: &[i8], w: &[u8]) -> [i32; 4] {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        super::dsp::quad_dot_wide(patch, w)
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        super::reference::quad_dot_wide_reference(patch, w)
    }
}
