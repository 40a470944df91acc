//! Keeps freed activation buffers in the process for the next step.
//!
//! A training step allocates and frees dozens of buffers of 0.1-30 MB. glibc's malloc serves
//! every buffer above its mmap threshold (128 KiB at start) with a fresh `mmap` and returns it
//! with `munmap` when freed: each step then pays a page fault per 4 KiB page it writes and a TLB
//! shootdown across cores per buffer it frees. Raising the threshold to glibc's maximum (32 MiB,
//! above the largest buffer of the paper's network at batch 40) and the trim threshold to 1 GiB
//! makes malloc reuse that memory instead. Measured with `host-trainer bench --steps 15` (flex,
//! this project's 2-core machine, training paused), one process each, alternating: 274 and 266 ms
//! per step with glibc's defaults, 247 and 224 ms with these settings (docs/training-speed.md).
//! The cost: the process keeps up to its peak heap after a step instead of returning it.

/// Applies the settings above, unless the user set glibc's malloc tunables themselves (then theirs
/// apply). A no-op on other C libraries.
pub fn reuse_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_tuned = std::env::var_os("GLIBC_TUNABLES")
            .is_some_and(|t| t.to_string_lossy().contains("glibc.malloc."))
            || std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("MALLOC_"));
        if user_tuned {
            return;
        }
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: `mallopt` only sets two numeric parameters of glibc's allocator, which takes
        // its own lock to do so; the values are in the documented ranges, and a refusal (return
        // value 0) leaves the defaults in place, which is still correct.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
