//! `edge-cli camera`: live classification from a V4L2 camera (a USB webcam, or the Raspberry Pi
//! camera through libcamera's V4L2 layer), one line per frame with label and frame rate.
//!
//! The device is asked for the first format it offers among YUYV, GREY, UYVY and MJPEG (in that
//! order: cheapest to decode first) at the requested size; the driver may pick another size,
//! which is used as negotiated. Frames flagged as corrupt by the driver, or that do not decode,
//! are counted and skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use edge_runtime::Model;
use linuxvideo::format::{PixFormat, PixelFormat};
use linuxvideo::{BufType, Device};
use serde::Serialize;

use crate::classify::classify_gray;
use crate::engine::{Engine, EngineKind};
use crate::faces::{Detector, FaceMode};
use crate::frame::{to_gray, FrameFormat, Layout};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The V4L2 capture device.
    #[arg(long, default_value = "/dev/video0")]
    pub device: PathBuf,
    /// Stop after this many classified frames (default: run until interrupted).
    #[arg(long)]
    pub frames: Option<u64>,
    /// Requested frame width (the driver may choose the nearest size it supports).
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Requested frame height.
    #[arg(long, default_value_t = 480)]
    pub height: u32,
    /// One JSON object per frame instead of text.
    #[arg(long)]
    pub json: bool,
    /// `int8` (edge-runtime) or `tract` (float ONNX).
    #[arg(long, value_enum, default_value = "int8")]
    pub engine: EngineKind,
    /// `detect` (or `auto`): the faces the detector finds; `centre`: the centred square.
    #[arg(long, value_enum, default_value = "detect")]
    pub faces: FaceMode,
    /// A face-detector file made by `host-trainer cascade` (default: the embedded one).
    #[arg(long)]
    pub cascade: Option<PathBuf>,
}

// Linux errno values (the same on every architecture Linux runs the Pi on).
const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const EBUSY: i32 = 16;
const ENOTTY: i32 = 25;

/// Opens the device with a message that says what to do when it is missing, busy or forbidden.
fn open(path: &Path) -> Result<Device> {
    Device::open(path).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(ENOENT) => {
                "no such device: plug a camera in, or pass --device (list them with `ls /dev/video*`)"
            }
            Some(EACCES) => "permission denied: add your user to the `video` group and log in again",
            Some(EBUSY) => "camera busy: another program is using it",
            Some(ENOTTY) => "not a V4L2 device",
            _ => "cannot open the camera",
        };
        anyhow!("{}: {hint} ({e})", path.display())
    })
}

/// Picks the first supported layout the device offers.
fn choose_layout(device: &Device, path: &Path) -> Result<Layout> {
    let mut offered = Vec::new();
    for desc in device.formats(BufType::VIDEO_CAPTURE) {
        let desc = desc.with_context(|| format!("{}: cannot list formats", path.display()))?;
        offered.push(desc.pixel_format().as_fourcc());
    }
    if offered.is_empty() {
        bail!(
            "{}: not a video capture device (it offers no capture formats)",
            path.display()
        );
    }
    Layout::PREFERRED
        .into_iter()
        .find(|l| offered.contains(&l.fourcc()))
        .ok_or_else(|| {
            let names: Vec<String> = offered
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            anyhow!(
                "{}: offers only {}; edge-cli reads YUYV, GREY, UYVY or MJPEG",
                path.display(),
                names.join(", ")
            )
        })
}

#[derive(Serialize)]
struct FrameLine<'a> {
    frame: u64,
    faces: &'a [crate::classify::Classified],
    fps: f64,
    ms: f64,
}

/// Runs the camera loop.
///
/// # Errors
/// A camera that cannot be opened, offers no usable format or stops delivering frames.
pub fn run(model: &Model<'_>, args: &Args) -> Result<ExitCode> {
    let path = args.device.as_path();
    let device = open(path)?;
    let layout = choose_layout(&device, path)?;
    let capture = device
        .video_capture(PixFormat::new(
            args.width,
            args.height,
            PixelFormat::from_fourcc(layout.fourcc()),
        ))
        .map_err(|e| {
            let busy = e.raw_os_error() == Some(EBUSY);
            anyhow!(
                "{}: {} ({e})",
                path.display(),
                if busy {
                    "camera busy: another program is using it"
                } else {
                    "cannot set the capture format"
                }
            )
        })?;
    let negotiated = capture.format();
    let format = FrameFormat {
        layout: Layout::from_fourcc(negotiated.pixel_format().as_fourcc()).ok_or_else(|| {
            anyhow!(
                "{}: the driver switched to format {}",
                path.display(),
                String::from_utf8_lossy(&negotiated.pixel_format().as_fourcc())
            )
        })?,
        width: negotiated.width() as usize,
        height: negotiated.height() as usize,
        bytes_per_line: negotiated.bytes_per_line() as usize,
    };
    crate::warn!(
        "{}: {}x{} {}",
        path.display(),
        format.width,
        format.height,
        String::from_utf8_lossy(&format.layout.fourcc())
    );
    let mut stream = capture
        .into_stream()
        .with_context(|| format!("{}: cannot start streaming", path.display()))?;
    let mut engine = Engine::new(model, args.engine, None)?;
    let detector = Detector::new(args.cascade.as_deref(), args.faces)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut done, mut bad) = (0u64, 0u64);
    let mut last = Instant::now();
    while args.frames.is_none_or(|n| done < n) {
        let decoded = stream
            .dequeue(|view| {
                if view.is_error() {
                    return Ok(Err(anyhow!("driver flagged the frame as corrupt")));
                }
                Ok(to_gray(&format, &view))
            })
            .with_context(|| format!("{}: the camera stopped delivering frames", path.display()))?;
        let gray = match decoded {
            Ok(g) => g,
            Err(e) => {
                bad += 1;
                crate::warn!("frame skipped: {e:#}");
                continue;
            }
        };
        let t0 = Instant::now();
        let faces = classify_gray(&mut engine, &detector, &gray)?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let now = Instant::now();
        let fps = 1.0 / now.duration_since(last).as_secs_f64().max(1e-9);
        last = now;
        done += 1;
        if args.json {
            let line = FrameLine {
                frame: done,
                faces: &faces,
                fps,
                ms,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        } else {
            let labels: Vec<String> = faces
                .iter()
                .map(|f| format!("{} {:.0}%", f.label, 100.0 * f.confidence))
                .collect();
            writeln!(
                out,
                "frame {done:>5}: {:<24} {ms:>6.1} ms  {fps:>5.1} fps",
                if labels.is_empty() {
                    "no face".to_string()
                } else {
                    labels.join(", ")
                }
            )?;
        }
    }
    if bad > 0 {
        crate::warn!("{bad} frame(s) skipped");
    }
    Ok(ExitCode::SUCCESS)
}
