//! `edge-cli camera`: live classification from a V4L2 camera (a USB webcam, or the Raspberry Pi
//! camera through libcamera's V4L2 layer), one line per frame with label and frame rate. Faces
//! are followed from frame to frame and their labels kept steady (edge-runtime's `steady`, as on
//! the board); `--replay FILES` runs the same loop on recorded frames.
//!
//! The device is asked for the first format it offers among YUYV, GREY, UYVY and MJPEG (in that
//! order: cheapest to decode first) at the requested size; the driver may pick another size,
//! which is used as negotiated. Frames flagged as corrupt by the driver, or that do not decode,
//! are counted and skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use edge_runtime::Model;
use linuxvideo::format::{PixFormat, PixelFormat};
use linuxvideo::{BufType, Device};
use serde::Serialize;

use crate::annotate::Painter;
use crate::classified::classify_gray;
use crate::classify::expand;
use crate::engine::{Engine, EngineKind};
use crate::face_input::gray_of;
use crate::faces::{Detector, FaceMode};
use crate::frame::{to_gray, FrameFormat, GrayFrameBuf, Layout};
use crate::serve::{Hub, Published};
use crate::tracking::{Changes, FrameFace, Labeller};

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
    /// The face detector: `cnn` (YuNet-s int8; finds more faces, docs/face-detection.md) or
    /// `lbp` (the LBP cascade). Default: `cnn`, or `lbp` when `--cascade` names a cascade file.
    #[arg(long, value_enum)]
    pub detector: Option<crate::faces::DetectorKind>,
    /// Recorded frames instead of the camera: image files (or folders of them, in name order),
    /// one frame each; ends with a count of label changes, per frame and steady.
    #[arg(long, num_args = 1.., conflicts_with = "device")]
    pub replay: Vec<PathBuf>,
    /// Label each frame on its own (no smoothing across frames; faces are still followed).
    #[arg(long)]
    pub per_frame: bool,
    /// Serve a live view at this address (default 127.0.0.1:8080, this machine only; use
    /// 0.0.0.0:8080 to let other machines watch): the annotated frames, labels, latency and frame
    /// rate in a web page, an MJPEG stream and the JSON lines (docs/edge-cli.md). A replay then
    /// plays on repeat (unless --frames), paced at --replay-fps.
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub serve: Option<String>,
    /// Frames per second at which a served replay is played.
    #[arg(long, default_value_t = 15.0)]
    pub replay_fps: f64,
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
    faces: &'a [FrameFace],
    fps: f64,
    ms: f64,
}

/// Classifies frames and writes one line per frame: the loop shared by the camera and replays.
struct Looper<'m> {
    engine: Engine<'m>,
    detector: Detector,
    labeller: Labeller,
    json: bool,
    done: u64,
    last: Instant,
    changes: Changes,
    /// The live view's hub and the painter of its pictures, with `--serve`.
    live: Option<(Arc<Hub>, Painter)>,
}

impl<'m> Looper<'m> {
    fn new(model: &'m Model<'m>, args: &Args) -> Result<Self> {
        let steady = if args.per_frame {
            edge_runtime::steady::Steady::OFF
        } else {
            edge_runtime::pipeline::Settings::DEFAULT.steady
        };
        Ok(Looper {
            engine: Engine::new(model, args.engine, None)?,
            detector: Detector::new(
                crate::faces::DetectorKind::chosen(args.detector, args.cascade.as_deref()),
                args.cascade.as_deref(),
                args.faces,
            )?,
            labeller: Labeller::new(model, steady),
            json: args.json,
            done: 0,
            last: Instant::now(),
            changes: Changes::default(),
            live: None,
        })
    }

    /// Starts the live view when `--serve` was given.
    fn serve(&mut self, args: &Args) -> Result<()> {
        let Some(addr) = &args.serve else {
            return Ok(());
        };
        if !(args.replay_fps.is_finite() && (0.1..=1000.0).contains(&args.replay_fps)) {
            bail!("--replay-fps {}: expected 0.1 to 1000", args.replay_fps);
        }
        let hub = Arc::new(Hub::default());
        let bound = crate::serve::start(addr, hub.clone())?;
        crate::warn!("live view: http://{bound}/");
        self.live = Some((hub, Painter::new()?));
        Ok(())
    }

    /// With `--serve`: reports why the frames stopped on the page and keeps serving until the
    /// process is interrupted. Without: the error.
    fn stopped(&self, why: anyhow::Error) -> Result<ExitCode> {
        let Some((hub, _)) = &self.live else {
            return Err(why);
        };
        crate::warn!("{why:#}; still serving the last frame (Ctrl-C to stop)");
        hub.stop(&format!("{why:#}"));
        loop {
            std::thread::park();
        }
    }

    /// Classifies one frame (`file` names a recorded one) and writes its line.
    fn frame(&mut self, gray: &GrayFrameBuf, file: &str, out: &mut impl Write) -> Result<()> {
        let t0 = Instant::now();
        let mut faces = classify_gray(&mut self.engine, &self.detector, gray)?;
        for f in &mut faces {
            f.file = file.to_string();
        }
        let faces = self.labeller.label(faces);
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let now = Instant::now();
        let fps = 1.0 / now.duration_since(self.last).as_secs_f64().max(1e-9);
        self.last = now;
        self.done += 1;
        self.changes.add(&faces);
        let done = self.done;
        let line = FrameLine {
            frame: done,
            faces: &faces,
            fps,
            ms,
        };
        if let Some((hub, painter)) = &self.live {
            let img = image::GrayImage::from_raw(
                gray.width as u32,
                gray.height as u32,
                gray.pixels.clone(),
            )
            .map(image::DynamicImage::ImageLuma8)
            .context("a frame whose size does not match its pixels")?;
            let picture = painter.draw(&img, faces.iter().map(|f| &f.face));
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
                .encode_image(&picture)
                .context("cannot encode the live view's picture")?;
            hub.publish(Published {
                seq: done,
                jpeg,
                json: serde_json::to_string(&line)?,
            });
        }
        if self.json {
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        } else {
            let labels: Vec<String> = faces
                .iter()
                .map(|f| {
                    let own = if f.raw == f.face.label {
                        String::new()
                    } else {
                        format!(" (frame: {})", f.raw)
                    };
                    format!(
                        "#{} {} {:.0}%{own}",
                        f.track,
                        f.face.label,
                        100.0 * f.face.confidence
                    )
                })
                .collect();
            writeln!(
                out,
                "frame {done:>5}: {:<32} {ms:>6.1} ms  {fps:>5.1} fps",
                if labels.is_empty() {
                    "no face".to_string()
                } else {
                    labels.join(", ")
                }
            )?;
        }
        Ok(())
    }
}

/// Runs the loop on recorded frames, in the order given (folders in name order); served, on
/// repeat and paced.
fn replay(model: &Model<'_>, args: &Args) -> Result<ExitCode> {
    let mut errors = Vec::new();
    let files = expand(&args.replay, &mut errors);
    if let Some(e) = errors.first() {
        bail!("--replay: {e}");
    }
    let mut looper = Looper::new(model, args)?;
    looper.serve(args)?;
    let serving = looper.live.is_some();
    let limit = args.frames.unwrap_or(if serving {
        u64::MAX
    } else {
        files.len() as u64
    });
    let pace = Duration::from_secs_f64(1.0 / args.replay_fps.clamp(0.1, 1000.0));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut next = Instant::now();
    for path in files
        .iter()
        .cycle()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        if serving {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next = Instant::now().max(next) + pace;
        }
        let shown = fer_dataset::safe_read::shown_path(path);
        // The reader names the file escaped, as `shown`.
        let frame = fer_dataset::safe_read::read_image(path)
            .and_then(|img| looper.frame(&gray_of(&img), &shown, &mut out));
        if let Err(e) = frame {
            return looper.stopped(e.context("--replay"));
        }
    }
    let c = &looper.changes;
    crate::warn!(
        "{} frames, {} with a face: label changes of the largest face {} steady, {} per frame{}",
        looper.done,
        c.frames,
        c.steady,
        c.raw,
        if args.per_frame {
            " (--per-frame: no smoothing)"
        } else {
            ""
        }
    );
    if serving {
        return looper.stopped(anyhow!("the replay ended after {} frames", looper.done));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the camera loop.
///
/// # Errors
/// A camera that cannot be opened, offers no usable format or stops delivering frames.
pub fn run(model: &Model<'_>, args: &Args) -> Result<ExitCode> {
    if !args.replay.is_empty() {
        return replay(model, args);
    }
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
    let mut looper = Looper::new(model, args)?;
    looper.serve(args)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut bad = 0u64;
    while args.frames.is_none_or(|n| looper.done < n) {
        let decoded = stream
            .dequeue(|view| {
                if view.is_error() {
                    return Ok(Err(anyhow!("driver flagged the frame as corrupt")));
                }
                Ok(to_gray(&format, &view))
            })
            .with_context(|| format!("{}: the camera stopped delivering frames", path.display()));
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => return looper.stopped(e),
        };
        let gray = match decoded {
            Ok(g) => g,
            Err(e) => {
                bad += 1;
                crate::warn!("frame skipped: {e:#}");
                continue;
            }
        };
        if let Err(e) = looper.frame(&gray, "", &mut out) {
            return looper.stopped(e);
        }
    }
    if bad > 0 {
        crate::warn!("{bad} frame(s) skipped");
    }
    if looper.live.is_some() {
        return looper.stopped(anyhow!("stopped after {} frames (--frames)", looper.done));
    }
    Ok(ExitCode::SUCCESS)
}
