//! `host-trainer detector`: a small CNN face detector's ONNX file (YuNet's layout) converted
//! into edge-runtime's int8 detector file, calibrated on camera-like frames of real FER-2013
//! training faces, and checked against the float graph on other such frames.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::Args;
use edge_runtime::detect::cnn::decode::{decode, DecodeParams, Detection};
use edge_runtime::detect::cnn::file::CnnDetector;
use edge_runtime::normalize::Normalize;
use fer_dataset::composite::{no_face, one_face, Composite, Rng};
use fer_dataset::data::{load_ids_with, Sample};
use fer_dataset::split::Manifest;

use crate::detector::float;
use crate::detector::graph::Graph;
use crate::detector::int8::{quantize, Ranges};

/// `host-trainer detector`: what to convert, what to calibrate on, where to write.
#[derive(Args, Debug, Clone)]
pub struct DetectorArgs {
    /// The detector's ONNX file.
    #[arg(long, default_value = "models/face_yunet_s.onnx")]
    pub onnx: PathBuf,
    /// FER-2013 (folder or fer2013.csv): the training faces of the calibration frames.
    #[arg(long, env = "FER2013_DIR")]
    pub data: Option<PathBuf>,
    /// The split manifest whose training part the faces come from.
    #[arg(long, default_value = "models/split.json")]
    pub manifest: PathBuf,
    /// The texture photos of the frames' backgrounds (brick, grass, gravel; 512x512).
    #[arg(long, default_value = "fer-checks/data/photos")]
    pub textures: PathBuf,
    /// Width of the calibration and check frames (a multiple of 32).
    #[arg(long, default_value_t = 160)]
    pub width: usize,
    /// Height of the calibration and check frames (a multiple of 32).
    #[arg(long, default_value_t = 128)]
    pub height: usize,
    /// Calibration frames.
    #[arg(long, default_value_t = 200)]
    pub frames: usize,
    /// Frames of the int8-against-float check.
    #[arg(long, default_value_t = 100)]
    pub check_frames: usize,
    /// The detector file to write.
    #[arg(long, default_value = "models/face_yunet_s.det")]
    pub out: PathBuf,
    /// Replace the detector file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Seeds of the calibration frames and of the check frames (different faces and places).
const CALIBRATION_SEED: u64 = 0xca1b;
const CHECK_SEED: u64 = 0xc4ec;

/// Camera-like frames: `count` frames, one in eight without a face, the others with one
/// training face of a side from a sixth of the frame's height to its whole height.
fn frames(
    samples: &[Sample],
    (w, h): (usize, usize),
    count: usize,
    textures: &[Vec<u8>],
    seed: u64,
) -> Vec<Composite> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            if i % 8 == 7 {
                no_face(w, h, textures, &mut rng)
            } else {
                let index = rng.below(samples.len());
                one_face(samples, index, w, h, (h / 6, h), textures, &mut rng)
            }
        })
        .collect()
}

/// How the int8 detector's faces compare with the float graph's on the check frames.
#[derive(Debug, Default)]
pub struct Agreement {
    pub frames: usize,
    pub float_faces: usize,
    pub int8_faces: usize,
    /// Float faces with an int8 face overlapping it by at least half (IoU).
    pub matched: usize,
    /// Mean IoU of the matched pairs, percent.
    pub mean_iou: f64,
    /// Mean landmark distance of the matched pairs, pixels.
    pub mean_landmark_px: f64,
}

fn iou(a: &Detection, b: &Detection) -> f64 {
    let iw = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
    let ih = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
    if iw <= 0 || ih <= 0 {
        return 0.0;
    }
    let inter = f64::from(iw) * f64::from(ih);
    inter / (f64::from(a.w) * f64::from(a.h) + f64::from(b.w) * f64::from(b.h) - inter)
}

/// Runs the float graph and the int8 file on `frames` and compares their faces.
pub fn agreement(
    graph: &Graph,
    file: &[u8],
    frames: &[Composite],
    p: &DecodeParams,
) -> Result<Agreement> {
    let det = CnnDetector::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut a = Agreement::default();
    let (mut iou_sum, mut lm_sum) = (0.0, 0.0);
    for f in frames {
        let plan = det
            .plan(f.width, f.height)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut arena = vec![0i8; plan.arena_len()];
        det.run(&plan, &f.pixels, &mut arena)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut found = [Detection::EMPTY; 64];
        let n = decode(&det, &plan, &arena, p, &mut found);
        let maps = float::run(graph, &f.pixels, f.height, f.width)?;
        let want = float::decode(graph, &maps, p);
        a.frames += 1;
        a.float_faces += want.len();
        a.int8_faces += n;
        for w in &want {
            if let Some(best) = found[..n]
                .iter()
                .max_by(|x, y| iou(w, x).total_cmp(&iou(w, y)))
            {
                let o = iou(w, best);
                if o >= 0.5 {
                    a.matched += 1;
                    iou_sum += o;
                    lm_sum += w
                        .landmarks
                        .iter()
                        .zip(&best.landmarks)
                        .map(|(p, q)| f64::from((p[0] - q[0]).pow(2) + (p[1] - q[1]).pow(2)).sqrt())
                        .sum::<f64>()
                        / 5.0;
                }
            }
        }
    }
    if a.matched > 0 {
        a.mean_iou = 100.0 * iou_sum / a.matched as f64;
        a.mean_landmark_px = lm_sum / a.matched as f64;
    }
    Ok(a)
}

/// A converted detector and how it compares with the float graph.
pub struct Converted {
    pub file: Vec<u8>,
    pub graph: Graph,
    pub calibration_frames: usize,
    pub agreement: Agreement,
}

/// Converts the detector as `args` say, without writing anything.
pub fn convert(data: &Path, args: &DetectorArgs) -> Result<Converted> {
    let (w, h) = (args.width, args.height);
    ensure!(
        w > 0 && h > 0 && w % 32 == 0 && h % 32 == 0 && w <= 1024 && h <= 1024,
        "--width {w} --height {h}: the frame sides must be multiples of 32, at most 1024"
    );
    ensure!(
        (1..=10_000).contains(&args.frames) && (1..=10_000).contains(&args.check_frames),
        "--frames and --check-frames: 1 to 10000"
    );
    let graph = Graph::from_onnx_file(&args.onnx)?;
    let textures = fer_dataset::composite::textures(&args.textures)
        .with_context(|| format!("--textures {}", args.textures.display()))?;
    let manifest = Manifest::read(&args.manifest)?;
    let mut ids = manifest.part("train")?;
    // A seeded sample of the training faces, enough for both sets of frames.
    let mut rng = Rng::new(CALIBRATION_SEED ^ CHECK_SEED);
    let wanted = (args.frames + args.check_frames).min(ids.len());
    for i in 0..wanted {
        let j = i + rng.below(ids.len() - i);
        ids.swap(i, j);
    }
    ids.truncate(wanted);
    let samples = load_ids_with(data, &ids, Normalize::None)?;
    let calibration = frames(&samples, (w, h), args.frames, &textures, CALIBRATION_SEED);
    let mut ranges = Ranges::new(&graph);
    let bar = crate::progress::bar(true, calibration.len() as u64, "calibrating");
    for f in &calibration {
        ranges.add(&float::run(&graph, &f.pixels, f.height, f.width)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let spec = quantize(&graph, &ranges)?;
    let file = spec
        .encode()
        .map_err(|e| anyhow::anyhow!("the quantized detector: {e}"))?;
    let check = frames(&samples, (w, h), args.check_frames, &textures, CHECK_SEED);
    let agreement = agreement(&graph, &file, &check, &DecodeParams::default())?;
    Ok(Converted {
        file,
        graph,
        calibration_frames: calibration.len(),
        agreement,
    })
}

/// Runs the command; returns the summary it prints.
pub fn run(data: &Path, args: &DetectorArgs) -> Result<String> {
    crate::fsutil::check_overwrite(std::slice::from_ref(&args.out), args.force)?;
    let c = convert(data, args)?;
    fer_dataset::atomic_write::write_atomic(&args.out, &c.file)?;
    let a = &c.agreement;
    Ok(format!(
        "{}: {} layers, {} parameters -> {} ({} bytes), calibrated on {} frames of {}x{}\n\
         check on {} other frames (default score, 0.5): float {} faces, int8 {} faces, {} float faces matched by int8 (IoU ≥ 50%), mean IoU {:.1}%, landmarks {:.2} px apart",
        args.onnx.display(),
        c.graph.nodes.len(),
        c.graph.parameter_count(),
        args.out.display(),
        c.file.len(),
        c.calibration_frames,
        args.width,
        args.height,
        a.frames,
        a.float_faces,
        a.int8_faces,
        a.matched,
        a.mean_iou,
        a.mean_landmark_px
    ))
}
