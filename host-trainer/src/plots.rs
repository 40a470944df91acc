//! PNG plots: the training curves (the paper's Figure 2) and the confusion matrix as a heat map
//! with counts (Figure 3). Text uses DejaVu Sans embedded in the binary, so no system fonts are
//! needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::checkpoint::Averaged;
use crate::history::EpochStats;
use fer_dataset::metrics::Report;

const FONT: &str = "sans-serif";

/// Reads one figure of an epoch.
type Metric = fn(&EpochStats) -> f64;

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TTF; if registration failed, text would be missing, which
        // the plotting calls below report as an error.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

fn draw_err<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {}: {e:?}", path.display())
}

/// Renders into a temporary PNG next to `path`, then renames it over `path`.
fn render_atomic(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    register_fonts();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}.png",
        path.file_stem().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = size;
    let result = draw(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The run a fine-tune started from, drawn before its own epochs.
pub struct Earlier<'a> {
    /// Its recipe's name.
    pub name: &'a str,
    pub history: &'a [EpochStats],
}

/// Two panels: accuracy and loss per epoch, training and validation, like the paper's Figure 2.
/// A dashed vertical line marks the epoch whose weights were kept; a weight average of the last
/// epochs, when there is one, is a green bar over the averaged epochs at its validation figure.
/// With `earlier` (the run whose weights this one started from), its epochs come first and a
/// gray line marks where this run begins.
pub fn curves(
    path: &Path,
    title: &str,
    history: &[EpochStats],
    best_epoch: Option<usize>,
    averaged: Option<&Averaged>,
    earlier: Option<Earlier>,
) -> Result<()> {
    if history.is_empty() {
        return Err(anyhow!("no epochs to plot in {}", path.display()));
    }
    let offset = earlier.as_ref().map_or(0, |e| e.history.len());
    let history: Vec<EpochStats> = earlier
        .as_ref()
        .map_or(&[][..], |e| e.history)
        .iter()
        .cloned()
        .chain(history.iter().map(|e| EpochStats {
            epoch: e.epoch + offset,
            ..e.clone()
        }))
        .collect();
    let history = &history[..];
    let best_epoch = best_epoch.map(|b| b + offset);
    let averaged = averaged.map(|a| Averaged {
        epochs: (a.epochs.0 + offset, a.epochs.1 + offset),
        ..a.clone()
    });
    let averaged = averaged.as_ref();
    let size = (1400, 560);
    render_atomic(path, size, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(path))?;
        let root = root
            .titled(title, (FONT, 28).into_font().style(FontStyle::Bold))
            .map_err(draw_err(path))?;
        let panels = root.split_evenly((1, 2));
        let n = history.len() as f64;
        let specs: [(&str, Metric, Metric, Option<f64>); 2] = [
            (
                "accuracy",
                |e| e.train_accuracy,
                |e| e.val_accuracy,
                averaged.map(|a| a.val_accuracy),
            ),
            (
                "loss",
                |e| e.train_loss,
                |e| e.val_loss,
                averaged.map(|a| a.val_loss),
            ),
        ];
        for (panel, (name, train, val, mean_val)) in panels.iter().zip(specs) {
            let mut values: Vec<f64> = history.iter().flat_map(|e| [train(e), val(e)]).collect();
            values.extend(mean_val);
            let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.08).max(1e-3);
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("model {name}"), (FONT, 22))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(65)
                .build_cartesian_2d(0.5..n + 0.5, (lo - pad)..(hi + pad))
                .map_err(draw_err(path))?;
            chart
                .configure_mesh()
                .x_labels(history.len().min(25))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .x_desc("epoch")
                .y_desc(name)
                .label_style((FONT, 16))
                .axis_desc_style((FONT, 18))
                .draw()
                .map_err(draw_err(path))?;
            for (label, f, color) in [("train", train, BLUE), ("validation", val, RED)] {
                let points: Vec<(f64, f64)> =
                    history.iter().map(|e| (e.epoch as f64, f(e))).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
                    .map_err(draw_err(path))?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(draw_err(path))?;
            }
            if let (Some(a), Some(v)) = (averaged, mean_val) {
                let span = vec![(a.epochs.0 as f64 - 0.3, v), (a.epochs.1 as f64 + 0.3, v)];
                let green = RGBColor(0, 150, 60);
                chart
                    .draw_series(LineSeries::new(span, green.stroke_width(5)))
                    .map_err(draw_err(path))?
                    .label(format!(
                        "weight average, validation{}",
                        if a.chosen { " (kept)" } else { "" }
                    ))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], green.stroke_width(5))
                    });
            }
            if let Some(e) = earlier.as_ref().filter(|_| offset > 0) {
                let x = offset as f64 + 0.5;
                let gray = RGBColor(110, 110, 110);
                chart
                    .draw_series(LineSeries::new(
                        vec![(x, lo - pad), (x, hi + pad)],
                        gray.stroke_width(2),
                    ))
                    .map_err(draw_err(path))?
                    .label(format!("this run starts (epochs 1-{offset}: {})", e.name))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], gray.stroke_width(2))
                    });
            }
            if let Some(best) = best_epoch {
                let b = best as f64;
                let dashes = (0..20).map(|i| {
                    let y0 = lo - pad + (hi - lo + 2.0 * pad) * i as f64 / 20.0;
                    let y1 = y0 + (hi - lo + 2.0 * pad) / 40.0;
                    PathElement::new(vec![(b, y0), (b, y1)], BLACK.stroke_width(1))
                });
                chart.draw_series(dashes).map_err(draw_err(path))?;
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 16))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(if name == "loss" {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                })
                .draw()
                .map_err(draw_err(path))?;
        }
        root.present().map_err(draw_err(path))?;
        Ok(())
    })
}

/// The confusion matrix as a heat map (colour: share of the true class, so rare classes are as
/// readable as common ones), with the count in each cell, like the paper's Figure 3.
pub fn confusion(path: &Path, title: &str, report: &Report) -> Result<()> {
    let k = report.labels.len();
    let size = (900, 820);
    render_atomic(path, size, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(path))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24).into_font().style(FontStyle::Bold))
            .margin(20)
            .x_label_area_size(70)
            .y_label_area_size(100)
            .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
            .map_err(draw_err(path))?;
        let name = |v: &SegmentValue<usize>, flip: bool| match v {
            SegmentValue::CenterOf(i) if *i < k => {
                let i = if flip { k - 1 - i } else { *i };
                report.labels[i].clone()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(k + 1)
            .y_labels(k + 1)
            .x_label_formatter(&|v| name(v, false))
            .y_label_formatter(&|v| name(v, true))
            .x_desc("predicted label")
            .y_desc("true label")
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .draw()
            .map_err(draw_err(path))?;
        for (t, row) in report.confusion.iter().enumerate() {
            let support: usize = row.iter().sum();
            for (p, &count) in row.iter().enumerate() {
                let share = if support == 0 {
                    0.0
                } else {
                    count as f64 / support as f64
                };
                let y = k - 1 - t;
                // White → dark blue.
                let c = RGBColor(
                    (255.0 - 225.0 * share) as u8,
                    (255.0 - 190.0 * share) as u8,
                    (255.0 - 90.0 * share) as u8,
                );
                let cell = [
                    (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                ];
                chart
                    .draw_series(std::iter::once(Rectangle::new(cell, c.filled())))
                    .map_err(draw_err(path))?;
                let text_color = if share > 0.5 { WHITE } else { BLACK };
                let style = TextStyle::from((FONT, 22).into_font())
                    .color(&text_color)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let at = (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y));
                chart
                    .draw_series(std::iter::once(Text::new(format!("{count}"), at, style)))
                    .map_err(draw_err(path))?;
            }
        }
        root.present().map_err(draw_err(path))?;
        Ok(())
    })
}
