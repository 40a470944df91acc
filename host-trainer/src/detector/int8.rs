//! The float detector graph to edge-runtime's int8 detector file, with the expression model's
//! scheme (`crate::quantizer`): weights int8 symmetric per output channel, activations int8
//! asymmetric per tensor from ranges calibrated on real frames, int32 biases, one output stage
//! per channel. Max pools and upsamplings keep their input's grid; an add takes its two inputs
//! to a common fixed point and one stage rounds the sum onto its output's grid. The heads get
//! decode tables: the sigmoid of every int8 value (scores), the exp (box sizes), the step of one
//! int8 unit in strides (offsets).

use anyhow::{bail, ensure, Result};
use edge_runtime::detect::cnn::file::{
    DetectorSpec, HeadKind as FileHead, HeadSpec, LayerKind, LayerSpec,
};
use edge_runtime::format::QParams;
use edge_runtime::requant::Stage;

use super::float::Map;
use super::graph::{Graph, HeadKind, Op};
use crate::int8_grid::qparams_for;
use crate::quantizer::{quantize_rows, stage_for};

/// Per tensor, the smallest and largest value seen over calibration frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranges(pub Vec<(f32, f32)>);

impl Ranges {
    /// No frame seen yet.
    pub fn new(graph: &Graph) -> Ranges {
        Ranges(vec![(f32::MAX, f32::MIN); graph.channels.len()])
    }

    /// Widens the ranges by every tensor of one frame (from [`super::float::run`]).
    pub fn add(&mut self, maps: &[Map]) {
        for (r, m) in self.0.iter_mut().zip(maps) {
            for &v in &m.data {
                r.0 = r.0.min(v);
                r.1 = r.1.max(v);
            }
        }
    }
}

/// The int8 grid of every tensor: tensor 0 (the gray frame) is its pixel values (scale 1, zero
/// point 0, values 0-255 read as they are); a max pool's or an upsampling's output keeps its
/// input's grid; every other tensor gets its calibrated range.
pub fn grids(graph: &Graph, ranges: &Ranges) -> Result<Vec<QParams>> {
    let mut q = vec![
        QParams {
            scale: 1.0,
            zero: 0
        };
        graph.channels.len()
    ];
    for n in &graph.nodes {
        let (lo, hi) = ranges.0[n.output];
        ensure!(
            lo <= hi,
            "tensor {:?} was never computed during calibration",
            graph.names[n.output]
        );
        q[n.output] = match n.op {
            Op::MaxPool2 | Op::Upsample2 => q[n.inputs[0]],
            _ => qparams_for(lo, hi),
        };
    }
    Ok(q)
}

fn le<T: Copy>(v: &[T], f: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

/// Weights (rows of `taps`), biases and stages of a convolution reading a tensor of scale
/// `s_in` into one of grid `out`.
fn conv_params(weights: &[f32], bias: &[f32], taps: usize, s_in: f64, out: QParams) -> Vec<u8> {
    let (q, scales) = quantize_rows(weights, taps);
    let mut p: Vec<u8> = q.iter().map(|&v| v as u8).collect();
    let acc_scales: Vec<f64> = scales.iter().map(|&s| s_in * f64::from(s)).collect();
    let b: Vec<i32> = bias
        .iter()
        .zip(&acc_scales)
        .map(|(&b, &s)| (f64::from(b) / s).round() as i32)
        .collect();
    p.extend(le(&b, |v: i32| v.to_le_bytes().to_vec()));
    let stages: Vec<Stage> = acc_scales
        .iter()
        .map(|&s| stage_for(s / f64::from(out.scale), f64::from(out.zero)))
        .collect();
    p.extend(le(&stages, |s: Stage| s.to_le_bytes().to_vec()));
    p
}

/// An add's multipliers and stage: inputs of scales `sa`, `sb` into grid `out`.
fn add_params(sa: f64, sb: f64, out: QParams) -> Result<Vec<u8>> {
    let (ma, mb) = (sa / f64::from(out.scale), sb / f64::from(out.scale));
    let max = ma.max(mb);
    // The largest shift with both multipliers below 2^15.
    let k = (f64::from(edge_runtime::detect::cnn::ops::ADD_MUL_MAX - 1) / max)
        .log2()
        .floor() as i32;
    if !(1..=40).contains(&k) {
        bail!("an add's input scales {sa} and {sb} against its output's {} are too far apart for the int8 add", out.scale);
    }
    let (a_mul, b_mul) = (
        (ma * 2f64.powi(k)).round() as i32,
        (mb * 2f64.powi(k)).round() as i32,
    );
    let stage = Stage {
        m: 1,
        n: k as u32,
        b: (i64::from(out.zero) << k) + (1i64 << (k - 1)),
    };
    let mut p = a_mul.to_le_bytes().to_vec();
    p.extend(b_mul.to_le_bytes());
    p.extend(stage.to_le_bytes());
    Ok(p)
}

/// The decode table of a head whose map has grid `q`.
fn head_table(kind: HeadKind, q: QParams) -> Vec<u8> {
    let real = |v: i32| (f64::from(v) - f64::from(q.zero)) * f64::from(q.scale);
    let step = (f64::from(q.scale) * 65536.0).round() as i32;
    match kind {
        HeadKind::Class | HeadKind::Objectness => le(&(-128..=127).collect::<Vec<i32>>(), |v| {
            let p = 1.0 / (1.0 + (-real(v)).exp());
            ((p * 65536.0).round().min(65535.0) as u16)
                .to_le_bytes()
                .to_vec()
        }),
        HeadKind::Box => {
            let mut t = step.to_le_bytes().to_vec();
            t.extend(le(&(-128..=127).collect::<Vec<i32>>(), |v| {
                ((real(v).exp() * 65536.0).round().min(f64::from(u32::MAX)) as u32)
                    .to_le_bytes()
                    .to_vec()
            }));
            t
        }
        HeadKind::Landmarks => step.to_le_bytes().to_vec(),
    }
}

/// The detector file's contents for `graph` with calibrated `ranges`.
pub fn quantize(graph: &Graph, ranges: &Ranges) -> Result<DetectorSpec> {
    let q = grids(graph, ranges)?;
    let mut layers = Vec::new();
    for (k, n) in graph.nodes.iter().enumerate() {
        ensure!(
            n.output == k + 1,
            "node {k} writes tensor {}, expected {}",
            n.output,
            k + 1
        );
        let input = n.inputs[0];
        let s_in = f64::from(q[input].scale);
        let out = q[n.output];
        let (kind, relu, params) = match &n.op {
            Op::Stem {
                weights,
                bias,
                relu,
                ..
            } => (
                LayerKind::Stem,
                *relu,
                conv_params(weights, bias, 9, 1.0, out),
            ),
            Op::Pointwise {
                cin,
                weights,
                bias,
                relu,
                ..
            } => (
                LayerKind::Pointwise,
                *relu,
                conv_params(weights, bias, *cin, s_in, out),
            ),
            Op::Depthwise {
                weights,
                bias,
                relu,
                ..
            } => (
                LayerKind::Depthwise,
                *relu,
                conv_params(weights, bias, 9, s_in, out),
            ),
            Op::MaxPool2 => (LayerKind::MaxPool2, false, Vec::new()),
            Op::Upsample2 => (LayerKind::Upsample2, false, Vec::new()),
            Op::Add => (
                LayerKind::Add,
                false,
                add_params(s_in, f64::from(q[n.inputs[1]].scale), out)?,
            ),
        };
        let tensor = |t: usize| {
            u16::try_from(t).map_err(|_| anyhow::anyhow!("tensor {t}: too many tensors"))
        };
        layers.push(LayerSpec {
            kind,
            relu,
            input: tensor(input)?,
            other: tensor(n.inputs.get(1).copied().unwrap_or(0))?,
            params,
        });
    }
    let heads = graph
        .heads
        .iter()
        .map(|h| {
            Ok(HeadSpec {
                kind: match h.kind {
                    HeadKind::Class => FileHead::Class,
                    HeadKind::Objectness => FileHead::Objectness,
                    HeadKind::Box => FileHead::Box,
                    HeadKind::Landmarks => FileHead::Landmarks,
                },
                stride: u8::try_from(h.stride)?,
                tensor: u16::try_from(h.tensor)?,
                table: head_table(h.kind, q[h.tensor]),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tensors = graph
        .channels
        .iter()
        .zip(&q)
        .map(|(&c, g)| Ok((u16::try_from(c)?, g.zero)))
        .collect::<Result<Vec<_>>>()?;
    Ok(DetectorSpec {
        tensors,
        layers,
        heads,
    })
}
