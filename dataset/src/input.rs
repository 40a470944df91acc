//! Reading the files users hand us, safely: every reader of the trainer and the CLI goes through
//! here. A path must be a regular file (not a device such as /dev/zero, a FIFO that would block,
//! or a folder), no larger than its kind allows, and is read with that bound even if it grows
//! while being read. Images are decoded with limits on their dimensions and memory, and a JPEG
//! must be whole (a truncated one decodes as grey blocks, so it is refused).

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// What a file is expected to hold; each kind has its own size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A JPEG, PNG or other image file.
    Image,
    /// FER-2013's `fer2013.csv` (about 290 MB).
    Csv,
    /// A JSON file we wrote: split manifest, history, reports, golden logits.
    Json,
    /// An int8 model file for edge-runtime.
    Model,
    /// A face-detector file for edge-runtime.
    Cascade,
    /// An OpenCV cascade XML.
    CascadeXml,
    /// An ONNX model.
    Onnx,
    /// A burn record (`.bpk`): trained weights or optimizer state.
    Weights,
}

const MIB: u64 = 1 << 20;

impl Kind {
    /// The largest file of this kind that is read.
    pub const fn limit(self) -> u64 {
        match self {
            Kind::Image => 64 * MIB,
            Kind::Csv => 1024 * MIB,
            Kind::Json => 256 * MIB,
            Kind::Model => 64 * MIB,
            Kind::Cascade => 16 * MIB,
            Kind::CascadeXml => 64 * MIB,
            Kind::Onnx => 512 * MIB,
            Kind::Weights => 512 * MIB,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Image => "an image file",
            Kind::Csv => "FER-2013's fer2013.csv",
            Kind::Json => "a JSON file",
            Kind::Model => "an int8 model file",
            Kind::Cascade => "a face-detector cascade file",
            Kind::CascadeXml => "an OpenCV cascade XML file",
            Kind::Onnx => "an ONNX model",
            Kind::Weights => "a burn record (.bpk) written by host-trainer",
        })
    }
}

/// Checks that `path` is a regular file within `kind`'s limit, without opening it (opening a
/// FIFO blocks until a writer comes). Returns its size.
///
/// # Errors
/// A missing path, a device, FIFO, socket or folder, or a file above the limit.
pub fn check(path: &Path, kind: Kind) -> Result<u64> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read file ({kind} expected)", path.display()))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, FIFO or socket)"
        };
        bail!("{}: {what}; expected {kind}", path.display());
    }
    if meta.len() > kind.limit() {
        bail!(
            "{}: {} bytes, more than the {} bytes {kind} may have",
            path.display(),
            meta.len(),
            kind.limit()
        );
    }
    Ok(meta.len())
}

/// Reads `path` whole after [`check`]ing it, never more than `kind`'s limit.
///
/// # Errors
/// See [`check`]; a read error; a file that grew past the limit while being read.
pub fn read(path: &Path, kind: Kind) -> Result<Vec<u8>> {
    let len = check(path, kind)?;
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(kind.limit() + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > kind.limit() {
        bail!(
            "{}: grew past the {} bytes {kind} may have while being read",
            path.display(),
            kind.limit()
        );
    }
    Ok(bytes)
}

/// Reads a text file (see [`read`]); it must be UTF-8.
///
/// # Errors
/// See [`read`]; text that is not UTF-8.
pub fn read_to_string(path: &Path, kind: Kind) -> Result<String> {
    String::from_utf8(read(path, kind)?).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {}); expected {kind}",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The largest width or height of an image that is decoded.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// The most memory the decoder may allocate for one image.
pub const MAX_IMAGE_ALLOC: u64 = 512 * MIB;

/// Decodes an image file's bytes (`name` names it in errors). Refuses images larger than
/// [`MAX_IMAGE_SIDE`] on a side, empty ones, and JPEGs without their end-of-image marker.
///
/// # Errors
/// An unknown format, a damaged or truncated file (the decoder's reason is given), or an image
/// too large or empty.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<image::DynamicImage> {
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .with_context(|| format!("{name}: cannot read"))
    };
    let format = reader()?.format().with_context(|| {
        format!("{name}: not an image in a supported format (JPEG, PNG, BMP, GIF, PNM, TIFF, WebP)")
    })?;
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| anyhow::anyhow!("{name}: damaged {format:?} image: {e}"))?;
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        bail!(
            "{name}: {w}x{h} pixels, more than the {MAX_IMAGE_SIDE} pixels a side this tool \
             decodes"
        );
    }
    if w == 0 || h == 0 {
        bail!("{name}: empty image ({w}x{h} pixels)");
    }
    if format == image::ImageFormat::Jpeg && !jpeg_is_whole(bytes) {
        bail!(
            "{name}: truncated JPEG (no end-of-image marker): refusing to guess the missing part"
        );
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    let mut r = reader()?;
    r.limits(limits);
    r.decode()
        .map_err(|e| anyhow::anyhow!("{name}: damaged {format:?} image ({w}x{h}): {e}"))
}

/// Whether JPEG data ends with its end-of-image marker (`FF D9`), allowing zero padding after it.
pub fn jpeg_is_whole(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&[0xFF, 0xD9])
}

/// Reads and decodes an image file (see [`read`] and [`decode_image`]).
///
/// # Errors
/// See [`read`] and [`decode_image`].
pub fn read_image(path: &Path) -> Result<image::DynamicImage> {
    let bytes = read(path, Kind::Image)?;
    decode_image(&bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_by_kind() {
        let e = read(Path::new("/dev/zero"), Kind::Model).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(e.to_string().contains("int8 model"), "{e}");
        let dir = std::env::temp_dir();
        let e = read(&dir, Kind::Image).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
    }

    #[test]
    fn a_jpeg_must_end_with_its_marker() {
        assert!(jpeg_is_whole(&[0xFF, 0xD8, 1, 2, 0xFF, 0xD9]));
        assert!(jpeg_is_whole(&[0xFF, 0xD8, 1, 2, 0xFF, 0xD9, 0, 0]));
        assert!(!jpeg_is_whole(&[0xFF, 0xD8, 1, 2, 3]));
        assert!(!jpeg_is_whole(&[]));
    }
}
