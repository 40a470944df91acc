//! Dot products of int8 vectors: the inner loop of every layer.

/// Which kernels run on this machine, for benchmark reports (x86-64: AVX2 when the CPU has it
/// and the run-time check is available, see `kernels::simd::has_avx2`).
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx2() {
        return "AVX2 + SSE2";
    }
    #[cfg(target_arch = "aarch64")]
    if super::simd::has_dotprod() {
        return "NEON + SDOT";
    }
    if cfg!(all(feature = "dsp", target_arch = "arm")) {
        "Armv7E-M SMLAD"
    } else if cfg!(target_arch = "x86_64") {
        "SSE2"
    } else if cfg!(target_arch = "aarch64") {
        "NEON"
    } else {
        "portable"
    }
}

/// `Σ a[i] · b[i]`, with `b` holding int8 values as bytes (weights straight from the model
/// blob). `b` must be at least as long as `a`. Exact: `|Σ| ≤ 2^14 · a.len()`, far inside i32 for
/// every layer a valid model has.
///
/// With the `dsp` feature on an Arm target this is the SIMD version (two `SMLAD` per four
/// products, `kernels::dsp`); on x86-64 and aarch64 the SSE2 / NEON version (16 products a
/// step, `kernels::simd`); everywhere else the plain loop
/// ([`super::reference::dot_reference`]).
#[inline]
pub fn dot(a: &[i8], b: &[u8]) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        super::dsp::dot(a, b)
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        super::simd::dot(a, b)
    }
    #[cfg(not(any(
        all(feature = "dsp", target_arch = "arm"),
        target_arch = "x86_64",
        target_arch = "aarch64"
    )))]
    {
        super::reference::dot_reference(a, b)
    }
}

/// `Σ b[i]` of int8 bytes: how much a constant input offset adds to [`dot`].
#[inline]
pub fn sum(b: &[u8]) -> i32 {
    b.iter().map(|&w| i32::from(w as i8)).sum()
}
