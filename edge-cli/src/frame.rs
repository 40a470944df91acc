//! Camera frames to gray images: the pixel formats V4L2 cameras deliver (YUYV and UYVY 4:2:2,
//! 8-bit grey, Motion-JPEG), checked against the size the driver negotiated.

use anyhow::{bail, Context, Result};

/// A frame's pixel layout, from its V4L2 four-character code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `YUYV`: Y0 U Y1 V, 2 bytes per pixel.
    Yuyv,
    /// `UYVY`: U Y0 V Y1, 2 bytes per pixel.
    Uyvy,
    /// `GREY`: 8-bit luma.
    Grey,
    /// `MJPG` / `JPEG`: one JPEG image per frame (UVC cameras often omit the Huffman tables; the
    /// decoder then uses the standard ones).
    Mjpeg,
}

impl Layout {
    /// The layouts this tool reads, in order of preference (cheapest to decode first).
    pub const PREFERRED: [Layout; 4] = [Layout::Yuyv, Layout::Grey, Layout::Uyvy, Layout::Mjpeg];

    pub fn from_fourcc(code: [u8; 4]) -> Option<Layout> {
        match &code {
            b"YUYV" => Some(Layout::Yuyv),
            b"UYVY" => Some(Layout::Uyvy),
            b"GREY" => Some(Layout::Grey),
            b"MJPG" | b"JPEG" => Some(Layout::Mjpeg),
            _ => None,
        }
    }

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Layout::Yuyv => *b"YUYV",
            Layout::Uyvy => *b"UYVY",
            Layout::Grey => *b"GREY",
            Layout::Mjpeg => *b"MJPG",
        }
    }

    fn bytes_per_pixel(self) -> usize {
        match self {
            Layout::Yuyv | Layout::Uyvy => 2,
            Layout::Grey => 1,
            Layout::Mjpeg => 0,
        }
    }
}

/// The format the camera and the driver agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameFormat {
    pub layout: Layout,
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next (0: tightly packed).
    pub bytes_per_line: usize,
}

/// A decoded gray frame, tightly packed, owning its pixels: what
/// [`edge_runtime::preprocess::GrayFrame`] views (as `PathBuf` and `Path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayFrameBuf {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl GrayFrameBuf {
    /// The frame as edge-runtime's view of it.
    ///
    /// # Errors
    /// Fewer pixels than `width × height` (never for a frame built by this crate).
    pub fn view(&self) -> Result<edge_runtime::preprocess::GrayFrame<'_>> {
        edge_runtime::preprocess::GrayFrame::new(&self.pixels, self.width, self.height)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// UVC cameras send MJPEG frames without Huffman tables (DHT segments): the decoder then must use
/// the standard tables of the JPEG specification (Annex K.3), which it does for frames marked as
/// Motion-JPEG by an `AVI1` APP0 segment. Frames with neither get that marker inserted after SOI.
fn with_default_huffman_marker(jpeg: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return jpeg.into();
    }
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        let is_avi1 = marker == 0xE0 && jpeg.get(i + 4..i + 8) == Some(b"AVI1");
        if marker == 0xC4 || is_avi1 {
            return jpeg.into(); // tables present, or the decoder already knows it is MJPEG
        }
        if marker == 0xDA {
            break; // start of scan: no DHT before it
        }
        i += 2 + len;
    }
    let mut out = Vec::with_capacity(jpeg.len() + 9);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0x00]);
    out.extend_from_slice(&jpeg[2..]);
    out.into()
}

/// Decodes one frame's bytes to gray.
///
/// # Errors
/// A buffer shorter than the negotiated size (a truncated frame), or a JPEG that does not decode
/// or whose size differs from the negotiated one.
pub fn to_gray(format: &FrameFormat, data: &[u8]) -> Result<GrayFrameBuf> {
    let (w, h) = (format.width, format.height);
    if w == 0 || h == 0 {
        bail!("frame format {w}x{h} is empty");
    }
    if format.layout == Layout::Mjpeg {
        // Cameras pad buffers with zeros after the end-of-image marker; a frame without one was
        // cut short (the decoder would fill the missing part with gray).
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if end < 4 || data[end - 2..end] != [0xFF, 0xD9] {
            bail!(
                "truncated MJPEG frame: no end-of-image marker in {} bytes",
                data.len()
            );
        }
        let data = with_default_huffman_marker(&data[..end]);
        let img = image::load_from_memory_with_format(&data, image::ImageFormat::Jpeg)
            .context("MJPEG frame does not decode")?;
        let gray = img.into_luma8();
        if (gray.width() as usize, gray.height() as usize) != (w, h) {
            bail!(
                "MJPEG frame is {}x{}, the camera negotiated {w}x{h}",
                gray.width(),
                gray.height()
            );
        }
        return Ok(GrayFrameBuf {
            width: w,
            height: h,
            pixels: gray.into_raw(),
        });
    }
    let row = w * format.layout.bytes_per_pixel();
    let stride = format.bytes_per_line.max(row);
    let needed = stride * (h - 1) + row;
    if data.len() < needed {
        bail!(
            "truncated frame: {} bytes, {needed} needed for {w}x{h} {}",
            data.len(),
            String::from_utf8_lossy(&format.layout.fourcc())
        );
    }
    let mut pixels = vec![0u8; w * h];
    for (y, out) in pixels.chunks_exact_mut(w).enumerate() {
        let line = &data[y * stride..y * stride + row];
        match format.layout {
            Layout::Grey => out.copy_from_slice(line),
            Layout::Yuyv => {
                edge_runtime::preprocess::luma_422(line, 0, out);
            }
            Layout::Uyvy => {
                edge_runtime::preprocess::luma_422(line, 1, out);
            }
            Layout::Mjpeg => unreachable!("decoded above"),
        }
    }
    Ok(GrayFrameBuf {
        width: w,
        height: h,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured synthetic luma plane (the real-face frames are in tests/camera.rs).
    fn luma(w: usize, h: usize) -> Vec<u8> {
        (0..w * h)
            .map(|i| ((i % w) * 3 + (i / w) * 5 + (i * 7919) % 13) as u8)
            .collect()
    }

    fn yuyv_from(y: &[u8], w: usize, stride: usize) -> Vec<u8> {
        let h = y.len() / w;
        let mut out = vec![0u8; stride * h];
        for r in 0..h {
            for c in 0..w {
                out[r * stride + 2 * c] = y[r * w + c];
                out[r * stride + 2 * c + 1] = if c % 2 == 0 { 90 } else { 160 };
            }
        }
        out
    }

    #[test]
    fn yuyv_with_row_padding_keeps_the_luma() {
        let (w, h) = (64, 40);
        let y = luma(w, h);
        let data = yuyv_from(&y, w, 2 * w + 16);
        let f = FrameFormat {
            layout: Layout::Yuyv,
            width: w,
            height: h,
            bytes_per_line: 2 * w + 16,
        };
        assert_eq!(to_gray(&f, &data).unwrap().pixels, y);
    }

    #[test]
    fn uyvy_and_grey() {
        let (w, h) = (32, 8);
        let y = luma(w, h);
        let yuyv = yuyv_from(&y, w, 2 * w);
        let uyvy: Vec<u8> = yuyv.chunks_exact(2).flat_map(|p| [p[1], p[0]]).collect();
        let f = FrameFormat {
            layout: Layout::Uyvy,
            width: w,
            height: h,
            bytes_per_line: 0,
        };
        assert_eq!(to_gray(&f, &uyvy).unwrap().pixels, y);
        let g = FrameFormat {
            layout: Layout::Grey,
            ..f
        };
        assert_eq!(to_gray(&g, &y).unwrap().pixels, y);
    }

    #[test]
    fn a_truncated_frame_is_an_error_naming_the_sizes() {
        let f = FrameFormat {
            layout: Layout::Yuyv,
            width: 640,
            height: 480,
            bytes_per_line: 1280,
        };
        let err = to_gray(&f, &vec![0u8; 1000]).unwrap_err().to_string();
        assert!(
            err.contains("truncated frame: 1000 bytes, 614400 needed"),
            "{err}"
        );
    }

    fn jpeg_of(y: &[u8], w: usize, h: usize) -> Vec<u8> {
        let img = image::GrayImage::from_raw(w as u32, h as u32, y.to_vec()).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(&img)
            .unwrap();
        out.into_inner()
    }

    /// Removes every DHT (0xFFC4) segment, as UVC cameras send MJPEG.
    fn strip_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut i = 2;
        while i + 4 <= jpeg.len() {
            let marker = jpeg[i + 1];
            if marker == 0xDA {
                out.extend_from_slice(&jpeg[i..]);
                break;
            }
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            if marker != 0xC4 {
                out.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        out
    }

    #[test]
    fn mjpeg_frames_decode_with_and_without_huffman_tables() {
        let (w, h) = (96, 64);
        let y = luma(w, h);
        let f = FrameFormat {
            layout: Layout::Mjpeg,
            width: w,
            height: h,
            bytes_per_line: 0,
        };
        let jpeg = jpeg_of(&y, w, h);
        let stripped = strip_huffman_tables(&jpeg);
        assert!(
            stripped.len() < jpeg.len(),
            "the test JPEG had DHT segments"
        );
        for data in [&jpeg, &stripped] {
            let g = to_gray(&f, data).expect("decodes");
            let mean_err: f64 = g
                .pixels
                .iter()
                .zip(&y)
                .map(|(a, b)| f64::from(a.abs_diff(*b)))
                .sum::<f64>()
                / y.len() as f64;
            assert!(mean_err < 4.0, "mean error {mean_err}");
        }
        let wrong = FrameFormat { width: 80, ..f };
        let err = to_gray(&wrong, &jpeg).unwrap_err().to_string();
        assert!(
            err.contains("MJPEG frame is 96x64, the camera negotiated 80x64"),
            "{err}"
        );
        let cut = to_gray(&f, &jpeg[..jpeg.len() / 3]).map(|_| ());
        let err = format!("{:#}", cut.expect_err("a cut frame is refused"));
        assert!(err.contains("truncated MJPEG frame"), "{err}");
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0; 64]);
        assert!(
            to_gray(&f, &padded).is_ok(),
            "zero padding after EOI is fine"
        );
        let mut garbage = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x04];
        garbage.extend_from_slice(&[0xFF, 0xD9]);
        let err = format!(
            "{:#}",
            to_gray(&f, &garbage).map(|_| ()).expect_err("garbage")
        );
        assert!(err.contains("MJPEG frame does not decode"), "{err}");
    }

    #[test]
    fn fourcc_round_trip() {
        for l in Layout::PREFERRED {
            assert_eq!(Layout::from_fourcc(l.fourcc()), Some(l));
        }
        assert_eq!(Layout::from_fourcc(*b"JPEG"), Some(Layout::Mjpeg));
        assert_eq!(Layout::from_fourcc(*b"NV12"), None);
    }
}
