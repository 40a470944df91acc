//! `edge-cli eval --faces detect|auto`: the end-to-end accuracy on labelled photos, through the
//! path a camera takes (detector, the pipeline's crop rule, light normalization, int8): the
//! largest face of each image is classified, and an image where no face is found counts as
//! wrong. Images are read one at a time, so memory does not grow with the data set.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use edge_runtime::align::AlignRule;
use edge_runtime::normalize::Normalize;
use edge_runtime::pipeline;
use edge_runtime::Model;
use fer_dataset::data::{list_folders, Listing};
use fer_dataset::metrics::Report;
use indicatif::{ProgressBar, ProgressStyle};

use crate::face_input::{face_input_with, gray_of};
use crate::faces::{Detector, FaceMode};

/// What an end-to-end evaluation runs with.
pub struct Photos<'a> {
    /// A folder of class folders of photos.
    pub data: &'a Path,
    /// `Detect`, or `Auto` (small images taken whole).
    pub mode: FaceMode,
    pub margin: Option<usize>,
    pub shift_down: Option<i32>,
    pub cascade: Option<&'a PathBuf>,
    pub detector: crate::faces::DetectorKind,
    pub light: Normalize,
    pub mirror: bool,
    pub skip_bad: bool,
    /// Crop each face along its eye line by this rule (the CNN's landmarks) instead of the
    /// square around its box.
    pub align: Option<AlignRule>,
}

/// The class index of the largest face's answer, or `None` when no face is found.
fn answer(
    model: &Model<'_>,
    detector: &Detector,
    args: &Photos<'_>,
    arena: &mut [i8],
    path: &Path,
) -> Result<Option<usize>> {
    let img = fer_dataset::safe_read::read_image(path)?;
    let gray = gray_of(&img);
    let input = match args.align {
        Some(rule) => {
            // Largest first: the pipeline's order.
            let faces = detector.cnn_faces(&gray)?;
            let Some(face) = faces.first() else {
                return Ok(None);
            };
            let frame = gray.view()?;
            let mut input = [0u8; edge_runtime::INPUT_PIXELS];
            match pipeline::aligned_face_input(&frame, face, rule, args.light, &mut input) {
                Ok(()) => input,
                // No eye line: the square around the box.
                Err(_) => match detector.squares(&gray)?.first() {
                    Some(&(square, _)) => face_input_with(&gray, square, args.light)?,
                    None => return Ok(None),
                },
            }
        }
        None => {
            let squares = detector.squares(&gray)?;
            // Largest first: the pipeline's order.
            let Some(&(square, _)) = squares.first() else {
                return Ok(None);
            };
            face_input_with(&gray, square, args.light)?
        }
    };
    let failed = |e: edge_runtime::Error| anyhow::anyhow!("{}: {e}", path.display());
    let logits = if args.mirror {
        model
            .run_mirrored(&input[..], arena)
            .map_err(failed)?
            .argmax()
    } else {
        model.run(&input[..], arena).map_err(failed)?.argmax()
    };
    Ok(Some(logits.index()))
}

/// Evaluates the photos in `args.data` through the detector: the report (images without a
/// face in [`Report::missed`]), images per second, and a phrase saying how faces were taken.
///
/// # Errors
/// A data path that is not a folder layout, bad crop settings, or (without `skip_bad`) an
/// unreadable image.
pub fn evaluate(model: &Model<'_>, args: &Photos<'_>) -> Result<(Report, f64, String)> {
    if !args.data.is_dir() {
        anyhow::bail!(
            "{}: expected a folder of class folders of photos with --faces detect or auto (a \
             manifest or fer2013.csv holds FER-2013's own 48x48 crops: evaluate them with --faces \
             whole)",
            args.data.display()
        );
    }
    let mode = args.mode;
    let detector = Detector::new(args.detector, args.cascade.map(PathBuf::as_path), mode)?
        .with_crop(args.margin, args.shift_down)?;
    if args.align.is_some() && detector.kind() != crate::faces::DetectorKind::Cnn {
        anyhow::bail!(
            "--align crops along the eyes: it needs the CNN detector's landmarks (--detector cnn)"
        );
    }
    let Listing { files, not_files } = list_folders(args.data)?;
    for p in &not_files {
        crate::warn!(
            "skipped {}: named like an image but not a regular file",
            p.display()
        );
    }
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "eval [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut arena = vec![0i8; model.arena_size()];
    let mut outcomes = Vec::with_capacity(files.len());
    let mut skipped = 0usize;
    let started = std::time::Instant::now();
    for (path, label) in &files {
        match answer(model, &detector, args, &mut arena, path) {
            Ok(a) => outcomes.push((label.index(), a)),
            Err(e) if args.skip_bad => {
                bar.suspend(|| crate::warn!("skipped {}: {e:#}", path.display()));
                skipped += 1;
            }
            Err(e) => {
                bar.finish_and_clear();
                return Err(e).with_context(|| {
                    format!(
                        "cannot evaluate {} (pass --skip-bad to skip unreadable images)",
                        path.display()
                    )
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if outcomes.is_empty() {
        anyhow::bail!("{}: no image could be read", args.data.display());
    }
    if skipped > 0 {
        crate::warn!("{skipped} image(s) skipped");
    }
    let per_sec = outcomes.len() as f64 / started.elapsed().as_secs_f64();
    let report = Report::from_outcomes(outcomes);
    let s = detector.settings();
    let crop = match args.align {
        Some(r) => format!(
            "aligned on the eyes: side {:.2}, centre {:.2} below them, in eye distances",
            r.side_q8 as f64 / 256.0,
            r.down_q8 as f64 / 256.0
        ),
        None => format!(
            "margin {}%, shift down {}%",
            detector.margin_percent(),
            s.shift_down_percent
        ),
    };
    let faces = format!(
        ", largest face of the {} detector ({crop}; {} of {} images without a face, counted \
         wrong)",
        match detector.kind() {
            crate::faces::DetectorKind::Lbp => "LBP",
            crate::faces::DetectorKind::Cnn => "CNN",
        },
        report.missed_total(),
        report.total
    );
    Ok((report, per_sec, faces))
}
