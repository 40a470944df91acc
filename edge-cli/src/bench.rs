//! `edge-cli bench`: per-image latency and images/s of the int8 runtime against tract running the
//! float ONNX of the same model, batch 1, on this thread only. Inputs are real faces when
//! `--data` is given, else a fixed synthetic gradient (speed does not depend on pixel values).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use edge_runtime::{Model, INPUT_PIXELS};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Float ONNX of the same model (default: the embedded published one).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Timed inferences per engine (after 10 warm-up runs).
    #[arg(long, default_value_t = 300)]
    pub runs: usize,
    /// Run only this engine's timed loop (10 + `--runs` inferences) and print its line: for
    /// counting instructions per inference under an emulator, from two counts with different
    /// `--runs` (bench/aarch64_count.sh).
    #[arg(long, value_enum)]
    pub engine: Option<crate::engine::EngineKind>,
}

/// A 320x240 gray camera frame with one face (models/golden/detect_frame.gray).
static GOLDEN_FRAME: &[u8] = include_bytes!("../../models/golden/detect_frame.gray");

/// Median and mean of per-run seconds.
fn stats(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(f64::total_cmp);
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    (t[t.len() / 2], mean)
}

/// Median and mean seconds of the int8 runtime on `face` (after 10 warm-up runs).
fn time_int8(model: &Model<'_>, face: &[u8], arena: &mut [i8], runs: usize) -> Result<(f64, f64)> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 10 {
        let t = Instant::now();
        let l = model.run(face, arena).map_err(|e| anyhow::anyhow!("{e}"))?;
        std::hint::black_box(l);
        if i >= 10 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(stats(times))
}

/// Each layer's median seconds over `runs` inferences (the time from the previous layer's end,
/// the first layer's including the input's conversion), with its name and MACs.
fn layer_times(
    model: &Model<'_>,
    face: &[u8],
    arena: &mut [i8],
    runs: usize,
) -> Result<Vec<(String, f64, usize)>> {
    let n = model.layers().len();
    let mut per_layer = vec![Vec::with_capacity(runs); n];
    for _ in 0..runs {
        let mut last = Instant::now();
        model
            .run_observed(face, arena, |i, _, _| {
                let now = Instant::now();
                per_layer[i].push((now - last).as_secs_f64());
                last = now;
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(model
        .layers()
        .iter()
        .zip(per_layer)
        .map(|(l, t)| {
            let name = match l.kind {
                edge_runtime::format::Kind::Conv3x3 => {
                    format!("conv {}x{}x{} → {}", l.in_h, l.in_w, l.in_c, l.out_c)
                }
                edge_runtime::format::Kind::Dense => format!("dense {} → {}", l.in_len(), l.out_c),
            };
            (name, stats(t).0, l.macs())
        })
        .collect())
}

/// Median and mean seconds of tract running the float ONNX (`--onnx`, else the embedded one) on
/// `face`.
#[cfg(feature = "tract")]
fn time_tract(args: &Args, face: &[u8], runs: usize) -> Result<(f64, f64)> {
    use tract_onnx::prelude::*;
    let plan = crate::tract_engine::load(args.onnx.as_deref())?;
    let input = crate::tract_engine::input(face)?;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 10 {
        let t = Instant::now();
        let out = plan.run(tvec!(input.clone().into()))?;
        std::hint::black_box(out);
        if i >= 10 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(stats(times))
}

/// Runs the benchmark and prints a table.
///
/// # Errors
/// An unreadable ONNX file or one tract cannot run.
pub fn run(model: &Model<'_>, args: &Args) -> Result<ExitCode> {
    let face: Vec<u8> = (0..INPUT_PIXELS)
        .map(|i| ((i % 48) * 5 + (i / 48)) as u8)
        .collect();
    const MAX_RUNS: usize = 10_000_000;
    if !(1..=MAX_RUNS).contains(&args.runs) {
        anyhow::bail!("--runs is {}, expected 1 to {MAX_RUNS}", args.runs);
    }
    let runs = args.runs;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();

    let mut arena = vec![0i8; model.arena_size()];
    if let Some(engine) = args.engine {
        let (med, _) = match engine {
            crate::engine::EngineKind::Int8 => time_int8(model, &face, &mut arena, runs)?,
            #[cfg(feature = "tract")]
            crate::engine::EngineKind::Tract => time_tract(args, &face, runs)?,
            #[cfg(not(feature = "tract"))]
            crate::engine::EngineKind::Tract => {
                anyhow::bail!("--engine tract: this edge-cli is built without the `tract` feature")
            }
        };
        writeln!(
            out,
            "{engine:?}: {} inferences, median {:.3} ms",
            runs + 10,
            med * 1e3
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let (int8_med, int8_mean) = time_int8(model, &face, &mut arena, runs)?;
    let layers = layer_times(model, &face, &mut arena, runs)?;

    #[cfg(feature = "tract")]
    let (tract_med, tract_mean) = time_tract(args, &face, runs)?;

    // The face detector on a QVGA camera frame (the astronaut portrait of the golden files).
    let detector = crate::faces::Detector::new(
        crate::faces::DetectorKind::Lbp,
        None,
        crate::faces::FaceMode::Detect,
    )?;
    let frame = crate::frame::GrayFrameBuf {
        width: 320,
        height: 240,
        pixels: GOLDEN_FRAME.to_vec(),
    };
    let det_runs = (runs / 10).max(5);
    let mut times = Vec::with_capacity(det_runs);
    let mut found = 0;
    for i in 0..det_runs + 2 {
        let t = Instant::now();
        found = detector.squares(&frame)?.len();
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let (det_med, det_mean) = stats(times);

    writeln!(
        out,
        "batch 1, one thread, {runs} timed runs each, {} MACs per image",
        model.macs()
    )?;
    writeln!(out, "| engine | median ms | mean ms | images/s |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    writeln!(
        out,
        "| edge-runtime int8 ({} kernels) | {:.2} | {:.2} | {:.0} |",
        edge_runtime::kernels::dot::kernel_name(),
        int8_med * 1e3,
        int8_mean * 1e3,
        1.0 / int8_med
    )?;
    #[cfg(feature = "tract")]
    writeln!(
        out,
        "| tract float ONNX | {:.2} | {:.2} | {:.0} |",
        tract_med * 1e3,
        tract_mean * 1e3,
        1.0 / tract_med
    )?;
    #[cfg(not(feature = "tract"))]
    writeln!(
        out,
        "| tract float ONNX | (built without the `tract` feature) | | |"
    )?;
    writeln!(
            out,
        "| face detector, QVGA frame (LBP cascade, faces from {} px; {found} found) | {:.2} | {:.2} | {:.0} frames/s |",
        detector.settings().detect_params(320, 240).min_size,
        det_med * 1e3,
        det_mean * 1e3,
        1.0 / det_med
    )?;
    writeln!(
        out,
        "\nint8, per layer (median of {runs} runs; timing each layer adds a little):"
    )?;
    writeln!(out, "| layer | MACs | median µs | share |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    let total: f64 = layers.iter().map(|l| l.1).sum();
    for (name, t, macs) in &layers {
        writeln!(
            out,
            "| {name} | {macs} | {:.1} | {:.1}% |",
            t * 1e6,
            100.0 * t / total
        )?;
    }
    writeln!(
        out,
        "int8 model: {} bytes of weights, biases and output stages; arena {} bytes",
        model.weight_bytes(),
        model.arena_size()
    )?;
    Ok(ExitCode::SUCCESS)
}
