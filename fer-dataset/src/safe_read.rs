//! Reading the files users hand us, safely: every reader of the trainer and the CLI goes through
//! here. A path must be a regular file (not a device such as /dev/zero, a FIFO that would block,
//! or a folder), no larger than its kind allows, and is read with that bound even if it grows
//! while being read. Images are decoded with limits on their dimensions and memory, and a JPEG
//! must be whole (a truncated one decodes as grey blocks, so it is refused: [`crate::jpeg`]).

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

/// Checks that `path` is a regular file within `kind`'s limit and not empty, without opening it
/// (opening a FIFO blocks until a writer comes; reading a 0-byte `/proc` file may block too).
/// Returns its size.
///
/// # Errors
/// A missing path, a device, FIFO, socket or folder, an empty file, or a file above the limit.
pub fn check(path: &Path, kind: Kind) -> Result<u64> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read file ({kind} expected)", shown_path(path)))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, FIFO or socket)"
        };
        bail!("{}: {what}; expected {kind}", shown_path(path));
    }
    if meta.len() == 0 {
        // Nothing we read may be empty, and a file that says it holds 0 bytes may be a kernel
        // interface (/proc/kmsg) whose read blocks forever: refused without opening it.
        bail!(
            "{}: 0 bytes (an empty file, or a system file whose size is unknown); expected {kind}",
            shown_path(path)
        );
    }
    if meta.len() > kind.limit() {
        bail!(
            "{}: {} bytes, more than the {} bytes {kind} may have",
            shown_path(path),
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
    let file = File::open(path).with_context(|| format!("{}: cannot open", shown_path(path)))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(kind.limit() + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", shown_path(path)))?;
    if bytes.len() as u64 > kind.limit() {
        bail!(
            "{}: grew past the {} bytes {kind} may have while being read",
            shown_path(path),
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
            shown_path(path),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The largest width or height of an image that is decoded.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// The most memory the decoder may allocate for one image: an 8-bit RGBA image of the largest
/// side (8192x8192x4 bytes); a 16-bit RGBA one of that size (512 MiB decoded from a 0.5 MB file)
/// is refused before decoding.
pub const MAX_IMAGE_ALLOC: u64 = 256 * MIB;

/// Decodes an image file's bytes (`name` names it in errors). Refuses images larger than
/// [`MAX_IMAGE_SIDE`] on a side, empty ones, and JPEGs that are not whole ([`crate::jpeg`]).
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
    let (w, h) = reader()?.into_dimensions().map_err(|e| match e {
        image::ImageError::Unsupported(_) => anyhow::anyhow!(
            "{name}: an image in the {} format, which this tool does not read (JPEG, PNG, BMP, \
             GIF, PNM, TIFF, WebP)",
            format!("{format:?}").to_uppercase()
        ),
        e => anyhow::anyhow!("{name}: damaged {format:?} image: {e}"),
    })?;
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        bail!(
            "{name}: {w}x{h} pixels, more than the {MAX_IMAGE_SIDE} pixels a side this tool \
             decodes"
        );
    }
    if w == 0 || h == 0 {
        bail!("{name}: empty image ({w}x{h} pixels)");
    }
    if format == image::ImageFormat::Jpeg {
        crate::jpeg::check_whole(bytes, MAX_IMAGE_SIDE as usize).map_err(|e| {
            anyhow::anyhow!(
                "{name}: damaged or truncated JPEG ({w}x{h}): {e}; refusing to guess the missing \
                 part"
            )
        })?;
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    let mut r = reader()?;
    r.limits(limits.clone());
    let damaged = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => anyhow::anyhow!(
            "{name}: {w}x{h} {format:?} image needs more memory to decode than the {} MiB this \
             tool allows per image ({l})",
            MAX_IMAGE_ALLOC / MIB
        ),
        e => anyhow::anyhow!("{name}: damaged {format:?} image ({w}x{h}): {e}"),
    };
    let mut decoder = r.into_decoder().map_err(damaged)?;
    use image::ImageDecoder as _;
    // The decoded buffer counts against the limit before it is allocated.
    limits.reserve(decoder.total_bytes()).map_err(damaged)?;
    // EXIF orientation (phones store upright photos sideways and say so): applied, so a face is
    // upright when the detector looks for it. Only gray is used downstream, so a turned image
    // is converted to gray first (a quarter of the memory to turn).
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let img = image::DynamicImage::from_decoder(decoder).map_err(damaged)?;
    if orientation == image::metadata::Orientation::NoTransforms {
        return Ok(img);
    }
    let mut gray = image::DynamicImage::ImageLuma8(img.to_luma8());
    drop(img);
    gray.apply_orientation(orientation);
    Ok(gray)
}

/// Reads and decodes an image file (see [`read`] and [`decode_image`]).
///
/// # Errors
/// See [`read`] and [`decode_image`].
pub fn read_image(path: &Path) -> Result<image::DynamicImage> {
    let bytes = read(path, Kind::Image)?;
    decode_image(&bytes, &shown_path(path))
}

/// Text that came from outside (a file name, a CSV field) as it may be shown on a terminal or
/// written into JSON: control characters escaped (`\n`, `\u{1b}`: no escape sequence reaches
/// the terminal), bytes that are not UTF-8 as `\xNN` (two different names never show the same),
/// and at most `max` characters, the rest counted.
pub fn shown_bytes(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    let mut chars = 0usize;
    let mut cut = false;
    'all: for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if chars == max {
                cut = true;
                break 'all;
            }
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
            chars += 1;
        }
        for b in chunk.invalid() {
            if chars == max {
                cut = true;
                break 'all;
            }
            out.push_str(&format!("\\x{b:02X}"));
            chars += 1;
        }
    }
    if cut {
        out.push_str(&format!("… ({} bytes in all)", bytes.len()));
    }
    out
}

/// A path as [`shown_bytes`] shows it, whole.
pub fn shown_path(path: &Path) -> String {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    shown_bytes(&bytes, usize::MAX)
}

/// A field of a data file in an error message: escaped, at most 40 characters.
pub fn shown_field(field: &str) -> String {
    shown_bytes(field.as_bytes(), 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped_distinct_and_bounded() {
        assert_eq!(shown_bytes(b"happy/a.jpg", 100), "happy/a.jpg");
        assert_eq!(
            shown_bytes(b"a\x1b[31mred\n.jpg", 100),
            "a\\u{1b}[31mred\\n.jpg"
        );
        assert_eq!(shown_bytes(b"\xff.jpg", 100), "\\xFF.jpg");
        assert_ne!(shown_bytes(b"\xff.jpg", 100), shown_bytes(b"\xfe.jpg", 100));
        assert_eq!(shown_bytes("é.jpg".as_bytes(), 100), "é.jpg");
        let long = "7".repeat(50_000_000);
        let shown = shown_field(&long);
        assert!(
            shown.len() < 100 && shown.contains("50000000 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn empty_files_and_kernel_files_of_unknown_size_are_refused_without_reading() {
        let dir = std::env::temp_dir().join(format!("fer-input-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.json");
        std::fs::write(&empty, b"").unwrap();
        let e = read(&empty, Kind::Json).unwrap_err().to_string();
        assert!(e.contains("0 bytes") && e.contains("empty.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        // /proc/kmsg blocks every reader; it is refused before it is opened (where it exists
        // and can be stat'ed).
        let kmsg = Path::new("/proc/kmsg");
        if std::fs::metadata(kmsg).is_ok() {
            for kind in [
                Kind::Image,
                Kind::Model,
                Kind::Json,
                Kind::Weights,
                Kind::Csv,
            ] {
                let e = check(kmsg, kind).unwrap_err().to_string();
                assert!(e.contains("0 bytes"), "{e}");
            }
        }
    }

    #[test]
    fn devices_and_folders_are_refused_by_kind() {
        let e = read(Path::new("/dev/zero"), Kind::Model).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(e.to_string().contains("int8 model"), "{e}");
        let dir = std::env::temp_dir();
        let e = read(&dir, Kind::Image).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
    }

    /// A 120x80 textured gray JPEG, as the image crate encodes it.
    fn jpeg() -> Vec<u8> {
        let img = image::GrayImage::from_fn(120, 80, |x, y| {
            image::Luma([((x * 7 + y * 13 + (x * y) % 31) % 256) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .expect("encode");
        out
    }

    #[test]
    fn a_whole_jpeg_decodes_with_or_without_a_trailer() {
        let whole = jpeg();
        decode_image(&whole, "whole.jpg").expect("whole");
        for trailer in [&b"\n"[..], &[0u8; 16][..], &[0x55u8; 1000][..]] {
            let mut with = whole.clone();
            with.extend_from_slice(trailer);
            decode_image(&with, "trailer.jpg").expect("a trailer after the end marker");
        }
    }

    #[test]
    fn a_damaged_jpeg_is_refused_not_filled_with_grey() {
        let whole = jpeg();
        let n = whole.len();
        // 600 bytes cut from the middle of the scan.
        let mut cut = whole[..n / 2 - 300].to_vec();
        cut.extend_from_slice(&whole[n / 2 + 300..]);
        // Half the file, then an end-of-image marker.
        let mut half = whole[..n / 2].to_vec();
        half.extend_from_slice(&[0xFF, 0xD9]);
        // Cut before its end.
        let short = whole[..n - 200].to_vec();
        for (name, bytes) in [("cut.jpg", cut), ("half.jpg", half), ("short.jpg", short)] {
            let e = decode_image(&bytes, name).expect_err(name).to_string();
            assert!(
                e.contains(name) && e.contains("damaged or truncated JPEG"),
                "{e}"
            );
        }
        // A header that claims 8000x8000 pixels in a small file.
        let mut big = whole.clone();
        let sof = big
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline SOF marker");
        // FF C0, length (2), precision (1), height (2), width (2).
        big[sof + 5..sof + 9].copy_from_slice(&[0x1F, 0x40, 0x1F, 0x40]);
        let e = decode_image(&big, "big.jpg").expect_err("8000x8000 in a small file");
        assert!(e.to_string().contains("8000x8000"), "{e}");
    }
}
