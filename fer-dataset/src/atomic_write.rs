//! Writing output files without ever leaving a half-written one behind (host-trainer's
//! artifacts and checkpoints, edge-cli's annotated pictures).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed
/// over the target. A crash leaves either the old file or the new one, never a mix.
///
/// # Errors
/// The folder cannot be created or the file written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().to_string());
    let tmp = dir.join(temp_name(&name, std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// The temporary file [`write_atomic`] writes `name` through, in process `pid`.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.tmp{pid}")
}

/// The writer's process of a temporary file of [`write_atomic`] (`.<name>.tmp<pid>`).
fn temp_writer(file_name: &str) -> Option<u32> {
    file_name
        .strip_prefix('.')
        .and_then(|n| n.rsplit_once(".tmp"))
        .and_then(|(_, pid)| pid.parse::<u32>().ok())
}

/// Removes the temporary files [`write_atomic`] leaves in `dir` when a process is killed
/// mid-write (those of a process that no longer runs). Returns how many.
pub fn remove_stale_temp_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temp_files_of_dead_writers_are_removed() {
        let dir = std::env::temp_dir().join(format!("fer-stale-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        // No process has pid 4294967295; this one is alive.
        let dead = dir.join(temp_name("fer_cnn.bpk", u32::MAX));
        let ours = dir.join(temp_name("state.json", std::process::id()));
        let keep = dir.join("fer_cnn.tmp.bpk");
        for p in [&dead, &ours, &keep] {
            fs::write(p, b"x").expect("write");
        }
        let removed = remove_stale_temp_files(&dir);
        let left = (dead.exists(), ours.exists(), keep.exists());
        fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!((removed, left), (1, (false, true, true)));
        // What write_atomic leaves behind is what is recognised.
        assert_eq!(temp_writer(&temp_name("a.tmp.json", 42)), Some(42));
    }
}
