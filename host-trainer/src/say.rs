//! Messages to the terminal that never stop a run: `say!` writes a line to stderr and `show!` to
//! stdout like `eprintln!`/`println!`, but a failed write (a full disk under a redirected log,
//! `/dev/full`, a closed pipe) is dropped instead of panicking. What a run produces is written to
//! files (and their errors are errors); the terminal only gets copies and progress.

/// `eprintln!` that ignores a failed write.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that ignores a failed write.
#[macro_export]
macro_rules! show {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
