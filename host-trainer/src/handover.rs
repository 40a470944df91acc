//! The hand-over of a training run between sessions or machines: one compressed file that holds
//! what `--resume` needs (each checkpoint's `state.json`, weights and optimizer state, best and
//! averaged weights, the epochs an average can still use, the split manifests, a distilling
//! run's teacher targets), small enough to
//! commit once per session (docs/training.md, "Checkpoints").
//!
//! Float weights barely compress (8%), so the hand-over rounds them before compressing, to a
//! precision far below what one training step changes: weights keep 16 of f32's 23 mantissa
//! bits (relative error at most 2^-17, against about 10^-4 per Adam step), Adam's moments keep
//! bfloat16's 7 (0.4%; they are running averages of noisy gradients). Files stay burnpack files
//! of the same shape, so `--resume` reads them as it reads any checkpoint. A resumed hand-over
//! is therefore close to, not bit-identical with, the run it came from (the difference is
//! measured in docs/training.md). Identical files are stored once.
//!
//! Format: gzip of the line `fer-handover 1`, one line of JSON naming each file (its path
//! relative to the run folder, length, CRC-32, and which file holds the same bytes), then the
//! files' bytes in that order.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn_pack::{DType, Reader, Tensor, Writer};
use serde::{Deserialize, Serialize};

use crate::checkpoint::TrainState;

const MAGIC: &str = "fer-handover 1";
/// The most one hand-over may unpack to, and one file in it.
const MAX_TOTAL: u64 = 1 << 30;
const MAX_FILE: u64 = 512 << 20;
/// Mantissa bits kept: weights, and Adam's moments.
const WEIGHT_BITS: u32 = 16;
const MOMENT_BITS: u32 = 7;

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Relative to the run folder, `/`-separated plain names.
    path: String,
    len: u64,
    crc32: u32,
    /// The earlier entry holding the same bytes (then none are stored for this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    same_as: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Index {
    files: Vec<Entry>,
}

/// `bits`-bit mantissa rounding of an f32 (round to nearest, ties to even); NaN and infinity
/// kept.
fn round_mantissa(x: f32, bits: u32) -> f32 {
    if !x.is_finite() || bits >= 23 {
        return x;
    }
    let drop = 23 - bits;
    let v = x.to_bits();
    let half = 1u32 << (drop - 1);
    let odd = (v >> drop) & 1;
    let rounded = v.wrapping_add(half - 1 + odd) & !((1u32 << drop) - 1);
    let r = f32::from_bits(rounded);
    // Rounding up the largest finite values would reach infinity: keep those truncated.
    if r.is_finite() {
        r
    } else {
        f32::from_bits(v & !((1u32 << drop) - 1))
    }
}

/// The burnpack `bytes` with every f32 tensor's values rounded to `bits` mantissa bits.
fn round_burnpack(bytes: Vec<u8>, bits: u32, name: &str) -> Result<Vec<u8>> {
    let reader = Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{name}: not a burnpack file: {e:?}"))?;
    let metadata = reader.metadata().clone();
    let scalars = reader.scalars().clone();
    let tensors = reader
        .into_tensors()
        .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
    let mut rounded = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.dtype != DType::F32 {
            rounded.push(t);
            continue;
        }
        let (tensor, dtype, shape, param_id, data) = t
            .into_parts()
            .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
        let mut out = Vec::with_capacity(data.len());
        for c in data.chunks_exact(4) {
            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            out.extend_from_slice(&round_mantissa(x, bits).to_le_bytes());
        }
        rounded.push(Tensor::new(
            tensor,
            dtype,
            shape,
            param_id,
            burn_pack::Bytes::from_bytes_vec(out),
        ));
    }
    let mut writer = Writer::new(rounded);
    for (k, v) in &metadata {
        writer = writer.with_metadata(k, v);
    }
    for (k, v) in scalars {
        writer = writer.with_scalar(&k, v);
    }
    let out = writer
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
    Ok(out.to_vec())
}

/// The files of a run folder a hand-over carries, relative to it, sorted: `split.json` files, the
/// teachers' soft targets of a distilling run (`teacher-targets.json`, which its `--resume`
/// reads), and every checkpoint folder's state, weights and optimizer state; epoch weights only when the
/// recipe's final average can still use them (the last `average_last` epochs).
fn run_files(run: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    collect(run, "", 0, &mut out)?;
    out.sort();
    if !out
        .iter()
        .any(|p| p.ends_with("/state.json") || p == "state.json")
    {
        bail!(
            "{}: no checkpoint (no checkpoint-*/state.json below it): nothing to hand over",
            run.display()
        );
    }
    Ok(out)
}

fn collect(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) -> Result<()> {
    if depth > 2 {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let state = dir.join("state.json");
    let kept_epochs = if state.is_file() {
        let s: TrainState = crate::fsutil::read_json(&state)?;
        Some(s.recipe.epochs.saturating_sub(s.recipe.average_last))
    } else {
        None
    };
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = e.file_type()?;
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if kind.is_dir() {
            collect(&e.path(), &rel, depth + 1, out)?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let wanted = match kept_epochs {
            // A checkpoint folder: its state and the weights it names or keeps.
            Some(first_kept) => {
                name == "state.json"
                    || name == "best.bpk"
                    || name == "average.bpk"
                    || name.starts_with("model-") && name.ends_with(".bpk")
                    || name.starts_with("optimizer-") && name.ends_with(".bpk")
                    || epoch_number(&name).is_some_and(|n| n > first_kept)
            }
            None => name == "split.json" || name == crate::distill::TARGETS_FILE,
        };
        if wanted {
            out.push(rel);
        }
    }
    Ok(())
}

/// `NNN` of `epoch-NNN.bpk`.
fn epoch_number(name: &str) -> Option<usize> {
    name.strip_prefix("epoch-")?
        .strip_suffix(".bpk")?
        .parse()
        .ok()
}

/// The bytes a hand-over stores for the run file `rel`: weights and optimizer state rounded.
fn stored_bytes(run: &Path, rel: &str) -> Result<Vec<u8>> {
    let path = run.join(rel);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if !name.ends_with(".bpk") {
        return Ok(bytes);
    }
    let bits = if name.starts_with("optimizer-") {
        MOMENT_BITS
    } else {
        WEIGHT_BITS
    };
    round_burnpack(bytes, bits, &path.display().to_string())
}

/// Packs the resumable state of the run folder `run` into `out` (written atomically; an
/// existing `out` is replaced only with `force`). Returns the files packed and the size.
///
/// # Errors
/// No checkpoint in `run`, an unreadable or damaged file, or an `out` that exists.
pub fn pack(run: &Path, out: &Path, force: bool) -> Result<(usize, u64)> {
    crate::fsutil::check_overwrite(&[out.to_path_buf()], force)?;
    if !run.is_dir() {
        bail!("{}: no such run folder", run.display());
    }
    // A running training rewrites its checkpoint: stop it first (its lock says it runs).
    let _lock = crate::fsutil::lock_run_folder(run)
        .with_context(|| format!("cannot pack {} while it trains", run.display()))?;
    let files = run_files(run)?;
    let mut index = Index { files: Vec::new() };
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashMap<(u32, u64), (String, usize)> = HashMap::new();
    for rel in &files {
        let bytes = stored_bytes(run, rel)?;
        let crc32 = edge_runtime::crc32::crc32(&bytes);
        let len = bytes.len() as u64;
        let same_as = match seen.get(&(crc32, len)) {
            Some((first, i)) if blobs[*i] == bytes => Some(first.clone()),
            _ => None,
        };
        if same_as.is_none() {
            seen.insert((crc32, len), (rel.clone(), blobs.len()));
            blobs.push(bytes);
        }
        index.files.push(Entry {
            path: rel.clone(),
            len,
            crc32,
            same_as,
        });
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    writeln!(gz, "{MAGIC}")?;
    writeln!(gz, "{}", serde_json::to_string(&index)?)?;
    for b in &blobs {
        gz.write_all(b)?;
    }
    let packed = gz.finish()?;
    fer_dataset::atomic_write::write_atomic(out, &packed)?;
    Ok((files.len(), packed.len() as u64))
}

/// A hand-over's relative path as a path under the run folder: plain names only, at most three
/// deep, so nothing is written outside the run folder.
fn safe_relative(rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let plain = !rel.is_empty()
        && p.components().count() <= 3
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !rel.contains('\\');
    if !plain {
        bail!("'{rel}' is not a plain relative path (no '..', no absolute path, at most 3 deep)");
    }
    Ok(p.to_path_buf())
}

/// Unpacks the hand-over `file` into the run folder `run`, which must not hold any of its files
/// (nothing is overwritten). Every file's length and CRC-32 are checked before anything is
/// written. Returns the number of files.
///
/// # Errors
/// Not a hand-over, a damaged one, an unsafe path, or a file that is already there.
pub fn unpack(file: &Path, run: &Path) -> Result<usize> {
    let size = fer_dataset::safe_read::check(file, fer_dataset::safe_read::Kind::Weights)?;
    let raw =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut input = std::io::BufReader::new(flate2::read::GzDecoder::new(raw.take(size)));
    let bad = |what: &str| anyhow::anyhow!("{}: not a run hand-over ({what})", file.display());
    let mut line = String::new();
    input
        .by_ref()
        .take(64)
        .read_line(&mut line)
        .map_err(|_| bad("not gzip"))?;
    if line.trim_end() != MAGIC {
        return Err(bad(&format!("expected the line '{MAGIC}'")));
    }
    line.clear();
    input
        .by_ref()
        .take(16 << 20)
        .read_line(&mut line)
        .map_err(|_| bad("unreadable index"))?;
    let index: Index = serde_json::from_str(line.trim_end())
        .map_err(|e| bad(&format!("its index is not valid: {e}")))?;
    let mut total = 0u64;
    let mut plan: Vec<(PathBuf, &Entry)> = Vec::new();
    for e in &index.files {
        let rel = safe_relative(&e.path).with_context(|| format!("{}", file.display()))?;
        if e.len > MAX_FILE {
            return Err(bad(&format!("{} claims {} bytes", e.path, e.len)));
        }
        total += e.len;
        if total > MAX_TOTAL {
            return Err(bad("it claims more than 1 GiB"));
        }
        let target = run.join(&rel);
        if target.symlink_metadata().is_ok() {
            bail!(
                "{} already exists: unpack a hand-over into a run folder that does not hold \
                 that run yet (nothing was written)",
                target.display()
            );
        }
        plan.push((target, e));
    }
    // Read and check everything before the first write.
    let mut contents: HashMap<&str, Vec<u8>> = HashMap::new();
    for (_, e) in &plan {
        if e.same_as.is_some() {
            continue;
        }
        let mut bytes = Vec::new();
        input
            .by_ref()
            .take(e.len)
            .read_to_end(&mut bytes)
            .map_err(|_| bad("damaged data"))?;
        if bytes.len() as u64 != e.len || edge_runtime::crc32::crc32(&bytes) != e.crc32 {
            return Err(bad(&format!("{} is damaged or cut short", e.path)));
        }
        contents.insert(e.path.as_str(), bytes);
    }
    for (target, e) in &plan {
        let key = e.same_as.as_deref().unwrap_or(e.path.as_str());
        let bytes = contents.get(key).ok_or_else(|| {
            bad(&format!(
                "{} refers to {key}, which comes later or not at all",
                e.path
            ))
        })?;
        if bytes.len() as u64 != e.len || edge_runtime::crc32::crc32(bytes) != e.crc32 {
            return Err(bad(&format!("{} does not match {key}", e.path)));
        }
        fer_dataset::atomic_write::write_atomic(target, bytes)?;
    }
    Ok(plan.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_asked_mantissa_bits_to_nearest() {
        assert_eq!(round_mantissa(1.0, 7), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7 at 7 bits: ties to even (1.0).
        assert_eq!(round_mantissa(1.0 + 1.0 / 256.0, 7), 1.0);
        assert_eq!(round_mantissa(1.0 + 3.0 / 256.0, 7), 1.0 + 4.0 / 256.0);
        for x in [0.1f32, -3.7e-9, 12345.678, 1e-38, -2.5e30] {
            for bits in [7, 16] {
                let r = round_mantissa(x, bits);
                assert!(
                    ((r - x) / x).abs() <= 2f32.powi(-(bits as i32) - 1),
                    "{x} {bits} {r}"
                );
                assert_eq!(r.to_bits() & ((1 << (23 - bits)) - 1), 0);
            }
        }
        assert!(round_mantissa(f32::NAN, 7).is_nan());
        assert_eq!(round_mantissa(f32::INFINITY, 7), f32::INFINITY);
        assert!(round_mantissa(f32::MAX, 7).is_finite());
    }

    #[test]
    fn outside_checkpoints_the_split_and_teacher_targets_are_carried() {
        let dir = std::env::temp_dir().join(format!("fer-handover-files-{}", std::process::id()));
        let sub = dir.join("base");
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in [
            "split.json",
            "teacher-targets.json",
            "notes.txt",
            "base/split.json",
        ] {
            std::fs::write(dir.join(f), b"{}").expect("write");
        }
        let mut files = Vec::new();
        collect(&dir, "", 0, &mut files).expect("lists");
        files.sort();
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(
            files,
            ["base/split.json", "split.json", "teacher-targets.json"]
        );
    }

    #[test]
    fn only_plain_relative_paths_are_unpacked() {
        assert!(safe_relative("base/checkpoint-default/state.json").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/b/c/d", "a\\b"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }
}
