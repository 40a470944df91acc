//! `edge-cli classify`: the expression of the face in each image, as a table or JSON lines.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use edge_runtime::Model;

use crate::classified::{classify_gray, Classified};
use crate::engine::{Engine, EngineKind};
use crate::face_input::gray_of;
use crate::faces::{Detector, FaceMode};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image files (any format the image crate reads) or folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// `int8`: edge-runtime on the int8 model; `tract`: tract on the float ONNX (for comparison).
    #[arg(long, value_enum, default_value = "int8")]
    pub engine: EngineKind,
    /// With `--engine tract`: the float ONNX file (default: the embedded published one).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// `auto`: an image of at most 96x96 is a face crop, taken whole; larger ones: detect faces;
    /// `detect`: detected faces only; `centre`: no detector, the centred square.
    #[arg(long, value_enum, default_value = "auto")]
    pub faces: FaceMode,
    /// A face-detector file made by `host-trainer cascade` (default: the embedded published one).
    #[arg(long)]
    pub cascade: Option<PathBuf>,
    /// The face detector: `cnn` (YuNet-s int8; finds more faces, docs/face-detection.md) or
    /// `lbp` (the LBP cascade). Default: `cnn`, or `lbp` when `--cascade` names a cascade file.
    #[arg(long, value_enum)]
    pub detector: Option<crate::faces::DetectorKind>,
    /// Flip test-time augmentation (int8 engine): classify each face and its mirror image and
    /// average the logits — twice the inference time (docs/edge-cli.md gives its gain).
    #[arg(long)]
    pub mirror: bool,
    /// Faces classified per image at most, the largest first (a warning names an image that
    /// reaches it).
    #[arg(long, default_value_t = crate::faces::MAX_FACES)]
    pub max_faces: usize,
    /// Write a picture of each input image into this folder (same size, named after the input,
    /// `.png`), with each face's square, label and confidence drawn; existing files are never
    /// replaced.
    #[arg(long)]
    pub annotate: Option<PathBuf>,
    /// Write one PNG with every input's annotated picture as a thumbnail (at most 256, up to 8
    /// per row, each named); an existing file is never replaced.
    #[arg(long)]
    pub contact_sheet: Option<PathBuf>,
}

const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "bmp", "gif", "pgm", "ppm", "tif", "webp",
];

/// How many folder levels below an input folder are searched for images.
pub const MAX_FOLDER_DEPTH: usize = 32;

/// Expands folders into the image files they hold (sorted); files are kept as given.
pub(crate) fn expand(inputs: &[PathBuf], errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut walk = Walk::default();
    for p in inputs {
        if p.is_dir() {
            let before = out.len();
            walk.dir(p, 0, &mut out, errors);
            if out.len() == before {
                errors.push(format!(
                    "{}: folder holds no images ({})",
                    fer_dataset::safe_read::shown_path(p),
                    IMAGE_EXTENSIONS.join(", ")
                ));
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// A walk through folders that visits each real folder and image once, by canonical path: a
/// link to the folder itself or to a parent cannot make it loop, and an image reached through
/// two links is classified once. Folders deeper than [`MAX_FOLDER_DEPTH`] below an input are
/// reported, not searched (each level costs more to resolve; thousands would take minutes).
#[derive(Default)]
struct Walk {
    folders: HashSet<PathBuf>,
    images: HashSet<PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path, depth: usize, out: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
        if depth > MAX_FOLDER_DEPTH {
            errors.push(format!(
                "{}: more than {MAX_FOLDER_DEPTH} folders deep below the input; not searched",
                fer_dataset::safe_read::shown_path(dir)
            ));
            return;
        }
        match std::fs::canonicalize(dir) {
            Ok(real) => {
                if !self.folders.insert(real) {
                    return;
                }
            }
            Err(e) => {
                errors.push(format!(
                    "{}: cannot resolve folder: {e}",
                    fer_dataset::safe_read::shown_path(dir)
                ));
                return;
            }
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(format!(
                    "{}: cannot list folder: {e}",
                    fer_dataset::safe_read::shown_path(dir)
                ));
                return;
            }
        };
        entries.sort();
        for p in entries {
            if p.is_dir() {
                self.dir(&p, depth + 1, out, errors);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                if self.images.insert(real) {
                    out.push(p);
                }
            }
        }
    }
}

/// Classifies one image file: every face found in it.
///
/// # Errors
/// Unreadable file, unsupported/corrupt image, or no face found, naming the file.
pub fn classify_file(
    engine: &mut Engine<'_>,
    detector: &Detector,
    path: &Path,
) -> Result<Vec<Classified>> {
    let (_, faces) = read_and_classify(engine, detector, path)?;
    if faces.is_empty() {
        anyhow::bail!(
            "{}: no face found",
            fer_dataset::safe_read::shown_path(path)
        );
    }
    Ok(faces)
}

/// Reads one image file and classifies every face in it (none found: an empty list), keeping
/// the decoded image.
///
/// # Errors
/// Unreadable file, unsupported/corrupt image, or an inference failure, naming the file.
pub fn read_and_classify(
    engine: &mut Engine<'_>,
    detector: &Detector,
    path: &Path,
) -> Result<(image::DynamicImage, Vec<Classified>)> {
    let shown = fer_dataset::safe_read::shown_path(path);
    // The reader names the file escaped, as `shown`.
    let img = fer_dataset::safe_read::read_image(path)?;
    let faces = classify_gray(engine, detector, &gray_of(&img))
        .with_context(|| format!("{shown}: inference failed"))?
        .into_iter()
        .map(|f| Classified {
            file: shown.clone(),
            ..f
        })
        .collect();
    Ok((img, faces))
}

/// Runs the command: every input is tried; failures are reported and make the exit code 1.
///
/// # Errors
/// Only a failure to write to stdout.
pub fn run(model: &Model<'_>, args: &Args) -> Result<ExitCode> {
    let mut errors = Vec::new();
    let files = expand(&args.inputs, &mut errors);
    let mut engine =
        Engine::new(model, args.engine, args.onnx.as_deref())?.mirrored(args.mirror)?;
    let detector = Detector::new(
        crate::faces::DetectorKind::chosen(args.detector, args.cascade.as_deref()),
        args.cascade.as_deref(),
        args.faces,
    )?
    .with_max_faces(args.max_faces)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let width = files
        .iter()
        .map(|f| fer_dataset::safe_read::shown_path(f).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    if !args.json && !files.is_empty() {
        writeln!(
            out,
            "{:<width$} {:>18} {:>9} {:>5}  top-3",
            "file", "face box x,y,w,h", "label", "conf"
        )?;
    }
    let mut annotator = args
        .annotate
        .as_deref()
        .map(crate::annotate::Annotator::new)
        .transpose()?;
    let mut sheet = args
        .contact_sheet
        .as_deref()
        .map(crate::annotate::ContactSheet::new)
        .transpose()?;
    let painter = (annotator.is_some() || sheet.is_some())
        .then(crate::annotate::Painter::new)
        .transpose()?;
    for f in &files {
        let faces = match read_and_classify(&mut engine, &detector, f) {
            Ok((img, faces)) => {
                if let Some(p) = &painter {
                    // Every readable input gets its picture, with or without a face.
                    let picture = p.draw(&img, &faces);
                    if let Some(a) = annotator.as_mut() {
                        if let Err(e) = a.write(f, &picture) {
                            errors.push(format!("{e:#}"));
                        }
                    }
                    if let Some(s) = sheet.as_mut() {
                        let name = f.file_name().map_or_else(
                            || fer_dataset::safe_read::shown_path(f),
                            |n| fer_dataset::safe_read::shown_bytes(n.as_encoded_bytes(), 40),
                        );
                        s.add(&picture, &name);
                    }
                }
                if faces.is_empty() {
                    errors.push(format!(
                        "{}: no face found",
                        fer_dataset::safe_read::shown_path(f)
                    ));
                    continue;
                }
                faces
            }
            Err(e) => {
                errors.push(format!("{e:#}"));
                continue;
            }
        };
        for c in faces {
            if args.json {
                writeln!(out, "{}", serde_json::to_string(&c)?)?;
            } else {
                let b = c.face;
                let top: Vec<String> = c
                    .top3
                    .iter()
                    .map(|(l, s)| format!("{l} {:.0}%", 100.0 * s))
                    .collect();
                writeln!(
                    out,
                    "{:<width$} {:>18} {:>9} {:>4.0}%  {}",
                    c.file,
                    format!("{},{},{},{}", b.x, b.y, b.side, b.side),
                    c.label,
                    100.0 * c.confidence,
                    top.join(", ")
                )?;
            }
        }
    }
    if let (Some(s), Some(p)) = (sheet, &painter) {
        match s.finish(p.font()) {
            Ok((_, 0)) => {}
            Ok((n, left)) => crate::warn!(
                "the contact sheet holds the first {n} pictures; {left} more were left off"
            ),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    for e in &errors {
        crate::warn!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
