//! Where results and messages go. Results go to stdout and a failed write is an error (a full
//! disk must not turn into "success" with lost results); warnings and progress go to stderr and
//! a failed write there is dropped, never a panic.

use anyhow::Result;

/// `eprintln!` that ignores a failed write (stderr on a full disk or a closed pipe).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Refuses to start when stdout was closed by the caller (`edge-cli ... >&-`): Rust's runtime
/// puts `/dev/null` (opened for reading and writing) in place of a closed standard descriptor,
/// so every result would be lost while the exit code says success. A deliberate `>/dev/null`
/// opens it for writing only and is accepted. Linux only (it reads `/proc/self`).
///
/// # Errors
/// Stdout is the runtime's stand-in for a closed descriptor.
pub fn require_stdout() -> Result<()> {
    if stdout_was_closed() {
        anyhow::bail!(
            "stdout is closed: the results would be lost; send them to a file or a pipe (or to \
             /dev/null with `>/dev/null` to discard them)"
        );
    }
    Ok(())
}

/// Whether descriptor 1 is `/dev/null` opened read-write: what the runtime leaves for a closed one.
fn stdout_was_closed() -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(target) = std::fs::read_link("/proc/self/fd/1") else {
            return false;
        };
        if target != std::path::Path::new("/dev/null") {
            return false;
        }
        let Ok(info) = std::fs::read_to_string("/proc/self/fdinfo/1") else {
            return false;
        };
        open_for_reading_and_writing(&info)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Whether a `/proc/self/fdinfo` text says the descriptor is open read-write (`O_RDWR`, access
/// mode 2 in the octal `flags` field).
fn open_for_reading_and_writing(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 == 0o2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_access_modes() {
        assert!(open_for_reading_and_writing(
            "pos:\t0\nflags:\t0100002\nmnt_id:\t5\n"
        ));
        assert!(!open_for_reading_and_writing("pos:\t0\nflags:\t0100001\n"));
        assert!(!open_for_reading_and_writing("pos:\t0\nflags:\t02000000\n"));
        assert!(!open_for_reading_and_writing("garbage"));
    }
}
