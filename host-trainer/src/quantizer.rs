//! Post-training int8 quantization of the trained float model into edge-runtime's model file.
//!
//! Scheme (docs/design.md, TFLite-compatible): weights int8 symmetric per output channel
//! (`s_w[c] = max|w_c| / 127`); activations int8 asymmetric per tensor from calibration ranges;
//! bias int32 at scale `s_in · s_w[c]`; one output stage per channel (see
//! `edge_runtime::requant`) that applies ReLU on the accumulator, then BatchNorm and the output
//! scale in one fixed-point multiply, so BatchNorm-after-ReLU (and negative BatchNorm scales) are
//! exact. The input is `q = p − 128` with scale 1/255.

use anyhow::{bail, Result};
use burn::tensor::Device;
use edge_runtime::format::{Blob, Builder, Kind, LayerDesc, LayerParams, QParams};
use edge_runtime::requant::Stage;

use crate::batches::make_batch;
use crate::int8_grid::{qparams_for, RangeMethod};
use crate::model::Net;
use crate::network::NetworkParams;
use fer_dataset::data::Sample;

/// Training images calibrated on: the first ones of the seeded training split (by the quantize
/// step, and by quantization-aware training at the start of each epoch).
pub const CALIBRATION_IMAGES: usize = 1000;

/// The images a calibration takes from the training split (in the split's order): the first
/// [`CALIBRATION_IMAGES`]. The split groups the images by class, so on the published split these
/// are all *angry* faces; both the quantize step and quantization-aware training take these.
pub fn calibration_samples(train: &[Sample]) -> &[Sample] {
    &train[..train.len().min(CALIBRATION_IMAGES)]
}

/// The float outputs of the quantized layers over a set of calibration images.
pub struct Calibration {
    /// Per layer (see [`Net::forward_trace`]), all values of all images.
    layers: Vec<Vec<f32>>,
    images: usize,
}

impl Calibration {
    /// Runs `net` on `images` and keeps every quantized layer's output.
    pub fn collect(net: &Net, images: &[Sample], device: &Device) -> Self {
        let mut layers: Vec<Vec<f32>> = Vec::new();
        let idx: Vec<usize> = (0..images.len()).collect();
        for chunk in idx.chunks(100) {
            let (x, _) = make_batch(images, chunk, None, device);
            for (i, t) in net.forward_trace(x).into_iter().enumerate() {
                let v: Vec<f32> = t.into_data().try_into_vec().unwrap_or_default();
                if layers.len() <= i {
                    layers.push(Vec::new());
                }
                layers[i].extend(v);
            }
        }
        Calibration {
            layers,
            images: images.len(),
        }
    }

    /// Images calibrated on.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Activation parameters of every layer, each from its own values by `method`.
    pub fn qparams(&self, method: RangeMethod) -> Vec<QParams> {
        self.layers
            .iter()
            .map(|values| {
                let (lo, hi) = method.range(&mut values.clone());
                qparams_for(lo, hi)
            })
            .collect()
    }
}

/// `M` as an output stage with offset `B`: `m = round(M·2^n)` with `|m|` in `[2^30, 2^31)`.
pub fn stage_for(multiplier: f64, offset: f64) -> Stage {
    let mut n: i32 = if multiplier == 0.0 {
        31
    } else {
        30 - multiplier.abs().log2().floor() as i32
    };
    n = n.clamp(1, 62);
    let mut m = (multiplier * 2f64.powi(n)).round();
    if m.abs() >= 2f64.powi(31) {
        n -= 1;
        m = (multiplier * 2f64.powi(n)).round();
    }
    let b = (offset * 2f64.powi(n)).round() as i64 + (1i64 << (n - 1));
    Stage {
        m: m as i32,
        n: n as u32,
        b,
    }
}

/// Symmetric per-channel quantization of `w` (rows = output channels of `fan_in` values).
pub fn quantize_rows(w: &[f32], fan_in: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::new();
    for row in w.chunks(fan_in) {
        let max = row.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|&x| (x / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// The integer parameters of one layer, also needed for the QDQ ONNX export.
#[derive(Clone, Debug)]
pub struct QuantLayer {
    pub desc: LayerDesc,
    /// Our layout: conv `[out][ky][kx][in]`, dense `[out][in]` with `in` in HWC order.
    pub weights: Vec<i8>,
    pub weight_scales: Vec<f32>,
    pub bias: Vec<i32>,
    pub stages: Vec<Stage>,
}

/// The quantized model: its layers and the file edge-runtime reads.
pub struct Quantized {
    pub layers: Vec<QuantLayer>,
    pub file: Vec<u8>,
}

/// A layer's description; its blobs are filled in by the model builder. Conv layers pool.
fn layer_desc(
    kind: Kind,
    [h, w, c]: [usize; 3],
    out_c: usize,
    relu: bool,
    (input, output): (QParams, QParams),
) -> LayerDesc {
    const EMPTY: Blob = Blob { offset: 0, len: 0 };
    LayerDesc {
        kind,
        in_h: h as u16,
        in_w: w as u16,
        in_c: c as u16,
        out_c: out_c as u16,
        relu,
        pool: kind == Kind::Conv3x3,
        input,
        output,
        weights: EMPTY,
        bias: EMPTY,
        stages: EMPTY,
    }
}

/// Quantizes `net` with the activation parameters `acts` (one per layer output, from
/// [`Calibration::qparams`]).
///
/// # Errors
/// A model edge-runtime rejects (named by its error), or too few activation ranges.
pub fn quantize(net: &NetworkParams, acts: &[QParams]) -> Result<Quantized> {
    let count = net.blocks.len() + net.dense.len();
    if acts.len() != count {
        bail!("expected {count} activation ranges, got {}", acts.len());
    }
    let mut layers = Vec::new();
    let mut input = QParams {
        scale: 1.0 / 255.0,
        zero: edge_runtime::format::INPUT_ZERO,
    };
    for (block, &out) in net.blocks.iter().zip(acts) {
        let (wq, ws) = quantize_rows(&block.weights, 9 * block.in_c);
        let norm = &block.norm;
        let mut bias = Vec::new();
        let mut stages = Vec::new();
        for (c, &s_w) in ws.iter().enumerate() {
            let acc_scale = f64::from(input.scale) * f64::from(s_w);
            bias.push((f64::from(block.bias[c]) / acc_scale).round() as i32);
            let g = f64::from(norm.gamma[c]) / (f64::from(norm.var[c]) + norm.epsilon).sqrt();
            let shift = f64::from(norm.beta[c]) - f64::from(norm.mean[c]) * g;
            let s_out = f64::from(out.scale);
            stages.push(stage_for(
                g * acc_scale / s_out,
                shift / s_out + f64::from(out.zero),
            ));
        }
        let shape = [block.side, block.side, block.in_c];
        let desc = layer_desc(Kind::Conv3x3, shape, block.out_c, true, (input, out));
        layers.push(QuantLayer {
            desc,
            weights: wq,
            weight_scales: ws,
            bias,
            stages,
        });
        input = out;
    }
    for (fc, &out) in net.dense.iter().zip(&acts[net.blocks.len()..]) {
        let (wq, ws) = quantize_rows(&fc.weights, fc.d_in);
        let mut bias = Vec::new();
        let mut stages = Vec::new();
        for (o, &s_w) in ws.iter().enumerate() {
            let acc_scale = f64::from(input.scale) * f64::from(s_w);
            bias.push((f64::from(fc.bias[o]) / acc_scale).round() as i32);
            stages.push(stage_for(
                acc_scale / f64::from(out.scale),
                f64::from(out.zero),
            ));
        }
        let desc = layer_desc(
            Kind::Dense,
            [1, 1, fc.d_in],
            fc.d_out,
            fc.relu,
            (input, out),
        );
        layers.push(QuantLayer {
            desc,
            weights: wq,
            weight_scales: ws,
            bias,
            stages,
        });
        input = out;
    }
    let mut builder = Builder::default();
    for l in &layers {
        builder.push(
            l.desc,
            &LayerParams {
                weights: &l.weights,
                bias: &l.bias,
                stages: &l.stages,
            },
        );
    }
    let file = builder
        .finish()
        .map_err(|e| anyhow::anyhow!("edge-runtime rejects the quantized model: {e}"))?;
    Ok(Quantized { layers, file })
}

/// Accuracy of the int8 model file on `samples` (run by edge-runtime).
///
/// # Errors
/// A model file edge-runtime rejects.
pub fn int8_predictions(file: &[u8], samples: &[Sample]) -> Result<Vec<usize>> {
    let model = edge_runtime::Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut arena = vec![0i8; model.arena_size()];
    samples
        .iter()
        .map(|s| {
            model
                .run(&s.pixels[..], &mut arena)
                .map(|l| l.argmax().index())
                .map_err(|e| anyhow::anyhow!("{}: {e}", s.id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_gets_the_range_of_its_own_values() {
        let cal = Calibration {
            layers: vec![
                (0..=100).map(|i| i as f32 / 10.0).collect(),
                (0..=100).map(|i| -5.0 + i as f32 / 20.0).collect(),
            ],
            images: 1,
        };
        assert_eq!(
            cal.qparams(RangeMethod::MinMax),
            [qparams_for(0.0, 10.0), qparams_for(-5.0, 0.0)]
        );
        let p = RangeMethod::Percentile {
            low: 10.0,
            high: 90.0,
        };
        assert_eq!(
            cal.qparams(p),
            [qparams_for(1.0, 9.0), qparams_for(-4.5, -0.5)]
        );
    }
}
