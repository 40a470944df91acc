//! The trained network as plain data: one list of layers with their weights in one layout
//! (edge-runtime's), read from a burn [`Net`] once. The quantizer, the float ONNX and the QDQ
//! ONNX builders all consume it; [`layout`] is the one place that knows the other orders.

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Tensor;

use crate::model::Net;
use fer_dataset::data::SIDE;

/// A 3x3 'same' convolution block: Conv → ReLU → BatchNorm → MaxPool 2x2.
#[derive(Clone, Debug)]
pub struct ConvBlock {
    /// Side of the (square) input.
    pub side: usize,
    pub in_c: usize,
    pub out_c: usize,
    /// `[out][ky][kx][in]`.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub norm: Norm,
}

/// BatchNorm's inference parameters, per channel.
#[derive(Clone, Debug)]
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub epsilon: f64,
}

/// A dense layer, optionally followed by ReLU.
#[derive(Clone, Debug)]
pub struct Dense {
    pub d_in: usize,
    pub d_out: usize,
    /// `[out][in]`, `in` in the previous layer's HWC order.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub relu: bool,
}

/// The paper's network as plain parameters read out of a trained burn module
/// ([`crate::model::Net`]): conv blocks, then Flatten and dense layers (the last gives the
/// logits). What the ONNX export and the quantizer read.
#[derive(Clone, Debug)]
pub struct NetworkParams {
    pub blocks: Vec<ConvBlock>,
    pub dense: Vec<Dense>,
}

impl NetworkParams {
    /// Reads the inference parameters of `net` (BatchNorm's running statistics; Dropout has no
    /// parameters).
    ///
    /// # Errors
    /// A parameter that is not f32, or a layer of an unexpected shape.
    pub fn read(net: &Net) -> Result<Self> {
        let net = net.valid();
        let mut blocks = Vec::new();
        let mut side = SIDE;
        for (i, block) in net.blocks.iter().enumerate() {
            let [out_c, in_c, kh, kw] = block.conv.weight.val().dims();
            if (kh, kw) != (3, 3) {
                bail!("block {}: kernel {kh}x{kw}, expected 3x3", i + 1);
            }
            let oihw = floats(block.conv.weight.val())?;
            let norm = &block.norm;
            blocks.push(ConvBlock {
                side,
                in_c,
                out_c,
                weights: layout::conv_from_oihw(&oihw, out_c, in_c),
                bias: floats(block.conv.bias.as_ref().context("conv without bias")?.val())?,
                norm: Norm {
                    gamma: floats(norm.gamma.val())?,
                    beta: floats(norm.beta.val())?,
                    mean: floats(norm.running_mean.value())?,
                    var: floats(norm.running_var.value())?,
                    epsilon: norm.epsilon,
                },
            });
            side /= 2;
        }
        let flat = blocks.last().map(|b| (b.out_c, side));
        let mut dense = Vec::new();
        for (j, (fc, relu)) in [(&net.fc1, true), (&net.fc2, true), (&net.out, false)]
            .into_iter()
            .enumerate()
        {
            let [d_in, d_out] = fc.weight.val().dims();
            let burn = floats(fc.weight.val())?;
            // The first dense layer reads the flattened last block: CHW in burn and ONNX.
            let chw = if j == 0 { flat } else { None };
            dense.push(Dense {
                d_in,
                d_out,
                weights: layout::dense_from_gemm(&burn, d_in, d_out, chw),
                bias: floats(fc.bias.as_ref().context("dense without bias")?.val())?,
                relu,
            });
        }
        let network = NetworkParams { blocks, dense };
        network.check_finite()?;
        Ok(network)
    }

    /// Fails when any parameter is NaN or infinite, naming the layer.
    ///
    /// # Errors
    /// A non-finite weight, bias or BatchNorm parameter.
    pub fn check_finite(&self) -> Result<()> {
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        for (i, b) in self.blocks.iter().enumerate() {
            let n = &b.norm;
            if ![&b.weights, &b.bias, &n.gamma, &n.beta, &n.mean, &n.var]
                .iter()
                .all(|v| finite(v))
            {
                bail!("block {} holds a NaN or infinite parameter", i + 1);
            }
        }
        for (j, d) in self.dense.iter().enumerate() {
            if !finite(&d.weights) || !finite(&d.bias) {
                bail!("dense layer {} holds a NaN or infinite parameter", j + 1);
            }
        }
        Ok(())
    }

    /// `(channels, side)` of the last block's output, which the first dense layer reads.
    pub fn flattened(&self) -> Option<(usize, usize)> {
        self.blocks.last().map(|b| (b.out_c, b.side / 2))
    }
}

fn floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("model parameter is not f32: {e:?}"))
}

/// Weight layouts: ours (edge-runtime's, HWC activations) and ONNX's (burn's, NCHW activations).
pub mod layout {
    /// Index in a CHW flattening of the value at `k` in the HWC flattening of a `c` x `side` x
    /// `side` map.
    fn chw_of_hwc(k: usize, c: usize, side: usize) -> usize {
        let (ch, hw) = (k % c, k / c);
        ch * side * side + hw
    }

    /// Conv weights `[out][in][ky][kx]` (ONNX, burn) → `[out][ky][kx][in]` (ours).
    pub fn conv_from_oihw<T: Copy + Default>(w: &[T], out_c: usize, in_c: usize) -> Vec<T> {
        let mut ours = vec![T::default(); w.len()];
        for o in 0..out_c {
            for c in 0..in_c {
                for k in 0..9 {
                    ours[(o * 9 + k) * in_c + c] = w[(o * in_c + c) * 9 + k];
                }
            }
        }
        ours
    }

    /// Conv weights `[out][ky][kx][in]` (ours) → `[out][in][ky][kx]` (ONNX).
    pub fn conv_to_oihw<T: Copy + Default>(w: &[T], out_c: usize, in_c: usize) -> Vec<T> {
        let mut oihw = vec![T::default(); w.len()];
        for o in 0..out_c {
            for c in 0..in_c {
                for k in 0..9 {
                    oihw[(o * in_c + c) * 9 + k] = w[(o * 9 + k) * in_c + c];
                }
            }
        }
        oihw
    }

    /// Dense weights as Gemm's B `[in][out]` (burn's Linear) → `[out][in]` (ours). With
    /// `chw = Some((c, side))` the input is a flattened `c` x `side` x `side` map: CHW order in
    /// Gemm's, HWC in ours.
    pub fn dense_from_gemm<T: Copy + Default>(
        w: &[T],
        d_in: usize,
        d_out: usize,
        chw: Option<(usize, usize)>,
    ) -> Vec<T> {
        let mut ours = vec![T::default(); w.len()];
        for o in 0..d_out {
            for k in 0..d_in {
                let src = chw.map_or(k, |(c, side)| chw_of_hwc(k, c, side));
                ours[o * d_in + k] = w[src * d_out + o];
            }
        }
        ours
    }

    /// Dense weights `[out][in]` (ours) → Gemm's B `[in][out]`; the inverse of
    /// [`dense_from_gemm`].
    pub fn dense_to_gemm<T: Copy + Default>(
        w: &[T],
        d_in: usize,
        d_out: usize,
        chw: Option<(usize, usize)>,
    ) -> Vec<T> {
        let mut gemm = vec![T::default(); w.len()];
        for o in 0..d_out {
            for k in 0..d_in {
                let dst = chw.map_or(k, |(c, side)| chw_of_hwc(k, c, side));
                gemm[dst * d_out + o] = w[o * d_in + k];
            }
        }
        gemm
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn conversions_are_inverse_permutations() {
            let w: Vec<u32> = (0..4 * 3 * 9).collect();
            let ours = conv_from_oihw(&w, 4, 3);
            assert_eq!(conv_to_oihw(&ours, 4, 3), w);
            // Tap (ky, kx) = (1, 2) of input channel 2 of output 3.
            assert_eq!(ours[(3 * 9 + 5) * 3 + 2], w[(3 * 3 + 2) * 9 + 5]);
            let mut sorted = ours.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, w, "a permutation");

            // A 2-channel 3x3 map flattened into 18 inputs, 5 outputs.
            let g: Vec<u32> = (0..18 * 5).collect();
            for chw in [None, Some((2, 3))] {
                let ours = dense_from_gemm(&g, 18, 5, chw);
                assert_eq!(dense_to_gemm(&ours, 18, 5, chw), g);
            }
            let ours = dense_from_gemm(&g, 18, 5, Some((2, 3)));
            // HWC input 3 = pixel 1, channel 1 = CHW input 9 + 1 = 10.
            assert_eq!(ours[4 * 18 + 3], g[10 * 5 + 4]);
        }
    }
}
