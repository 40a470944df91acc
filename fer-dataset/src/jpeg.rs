//! Whether JPEG data is whole, decided strictly: the image crate's decoder is lenient (what is
//! missing decodes as grey blocks), so before an image is used its structure is walked and its
//! scan data is shown to hold every block.
//!
//! * The markers are walked from the start-of-image marker to the end-of-image marker; a file
//!   that ends before it, or whose scan runs to the end of the data, is truncated. Bytes after
//!   the end-of-image marker (a newline, a phone camera's trailer) are allowed.
//! * A size that the scan data cannot hold is refused before decoding: every 8x8 block of the
//!   first component takes at least 2 bits.
//! * Missing scan data: a decoder that runs out of data fills with zero bits. The image is
//!   decoded twice, once as it is and once with 16 bytes of one-bits inserted before its
//!   end-of-image marker; when the scan held every block the decoder never reads them and the two
//!   agree, when it did not they differ.

use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

/// What the marker walk found.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    width: usize,
    height: usize,
    /// Offset of the `FF D9` end-of-image marker.
    eoi: usize,
    /// Bytes of entropy-coded scan data, over all scans.
    scan_bytes: usize,
}

/// Walks the markers of `bytes`.
fn layout(bytes: &[u8]) -> Result<Layout, String> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("no start-of-image marker".into());
    }
    let n = bytes.len();
    let (mut pos, mut size, mut scan_bytes) = (2usize, None, 0usize);
    loop {
        // A marker: FF, optional fill FFs, then its code.
        if pos >= n || bytes[pos] != 0xFF {
            return Err(format!(
                "expected a marker at byte {pos}, the data ends or differs"
            ));
        }
        while pos < n && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&code) = bytes.get(pos) else {
            return Err("the data ends inside a marker".into());
        };
        pos += 1;
        match code {
            0xD9 => {
                let (width, height) = size.ok_or("no frame header before the end marker")?;
                return Ok(Layout {
                    width,
                    height,
                    eoi: pos - 2,
                    scan_bytes,
                });
            }
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = bytes
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or("the data ends inside a segment header")?;
        let end = pos + len;
        if len < 2 || end > n {
            return Err(format!(
                "a segment at byte {pos} runs past the end of the data"
            ));
        }
        // Frame headers (SOF0-SOF15 but DHT C4, JPG C8, DAC CC): precision, height, width.
        if matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC) {
            let field = |at: usize| usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
            if len < 7 {
                return Err("a frame header too short for its size".into());
            }
            size = Some((field(pos + 5), field(pos + 3)));
        }
        pos = end;
        if code == 0xDA {
            // Entropy-coded data up to the next marker that is not a stuffed byte or a restart.
            let start = pos;
            loop {
                match bytes.get(pos..pos + 2) {
                    None => return Err("the scan data runs to the end of the file".into()),
                    Some([0xFF, next]) if *next == 0x00 || (0xD0..=0xD7).contains(next) => pos += 2,
                    Some([0xFF, 0xFF]) => pos += 1,
                    Some([0xFF, _]) => break,
                    Some(_) => pos += 1,
                }
            }
            scan_bytes += pos - start;
        }
    }
}

/// Decodes `bytes` to gray with zune-jpeg (the image crate's decoder), leniently.
fn decode_gray(bytes: &[u8], max_side: usize) -> Result<Vec<u8>, String> {
    let options = DecoderOptions::default()
        .set_max_width(max_side)
        .set_max_height(max_side)
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options)
        .decode()
        .map_err(|e| format!("{e:?}"))
}

/// Checks that JPEG data is whole (see the module documentation); images wider or higher than
/// `max_side` are left to the caller's size check.
///
/// # Errors
/// What is wrong: a missing end marker, a size the data cannot hold, missing scan data, or the
/// decoder's reason.
pub fn check_whole(bytes: &[u8], max_side: usize) -> Result<(), String> {
    let l = layout(bytes)?;
    if l.width > max_side || l.height > max_side {
        return Ok(());
    }
    let blocks = l.width.div_ceil(8) * l.height.div_ceil(8);
    if l.scan_bytes.saturating_mul(4) < blocks {
        return Err(format!(
            "{}x{} pixels need at least {} bytes of scan data, the file holds {}",
            l.width,
            l.height,
            blocks.div_ceil(4),
            l.scan_bytes
        ));
    }
    let plain = decode_gray(bytes, max_side)?;
    let mut probe = Vec::with_capacity(bytes.len() + 34);
    probe.extend_from_slice(&bytes[..l.eoi]);
    for _ in 0..16 {
        probe.extend_from_slice(&[0xFF, 0x00]);
    }
    probe.extend_from_slice(&[0xFF, 0xD9]);
    if decode_gray(&probe, max_side)? != plain {
        return Err("the scan data ends before the last block".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_walk_finds_the_size_and_the_end() {
        let img = image::GrayImage::from_fn(40, 24, |x, y| image::Luma([(x * 5 + y * 3) as u8]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&img)
            .expect("encode");
        let l = layout(&bytes).expect("layout");
        assert_eq!((l.width, l.height, l.eoi), (40, 24, bytes.len() - 2));
        assert!(l.scan_bytes > 0);
        check_whole(&bytes, 8192).expect("whole");
        assert!(layout(&bytes[..bytes.len() - 2]).is_err());
        assert!(layout(b"not a jpeg").is_err());
        assert!(layout(&[0xFF, 0xD8]).is_err());
    }
}
