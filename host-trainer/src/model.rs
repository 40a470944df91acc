//! The paper's CNN (Zaidi et al. 2024, FER-2013): five blocks of
//! Conv3x3 'same' + ReLU → BatchNorm → MaxPool 2x2 → Dropout 0.25 with 32, 64, 128, 128, 256
//! filters, then Flatten → Dropout → Dropout → Dense 512 ReLU → Dense 512 ReLU → Dense 7.
//!
//! The last layer outputs logits; the paper's softmax is applied by the loss during training and
//! by the exported ONNX graph for inference.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::tensor::{Device, Tensor};

use crate::int8_grid;
use edge_runtime::format::QParams;
use edge_runtime::labels::CLASS_COUNT;
use fer_dataset::data::SIDE;

/// Output channels of the five convolution blocks.
pub const FILTERS: [usize; 5] = [32, 64, 128, 128, 256];
/// Width of the two hidden dense layers.
pub const HIDDEN: usize = 512;

/// Dropout rates. The paper gives 0.25 after each block; it does not give the rate of the two
/// Dropouts after Flatten, which we also set to 0.25 (the value the PyTorch reference run used).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutRates {
    pub block: f64,
    pub head: f64,
}

impl Default for DropoutRates {
    fn default() -> Self {
        DropoutRates {
            block: 0.25,
            head: 0.25,
        }
    }
}

/// One Conv3x3 'same' + ReLU → BatchNorm → MaxPool 2x2 → Dropout block.
#[derive(Module, Debug)]
pub struct Block {
    pub conv: Conv2d,
    pub norm: BatchNorm,
    pub pool: MaxPool2d,
    pub dropout: Dropout,
    pub relu: Relu,
}

impl Block {
    fn new(cin: usize, cout: usize, dropout: f64, device: &Device) -> Self {
        Block {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            norm: BatchNormConfig::new(cout).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            dropout: DropoutConfig::new(dropout).init(),
            relu: Relu::new(),
        }
    }

    /// The block in float: [`Pass::Float`] through `Block::forward_pass`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_pass(x, &mut Pass::Float, 0)
    }

    /// The block as `pass` walks it (block `index` of the network): convolution (weights as
    /// the pass gives them) and ReLU, BatchNorm, max pool, the block's output as the pass sees
    /// or rounds it, Dropout.
    fn forward_pass(&self, x: Tensor<4>, pass: &mut Pass, index: usize) -> Tensor<4> {
        let x = if pass.rounds_weights() {
            let mut conv = self.conv.clone();
            conv.weight = conv.weight.map(|w| int8_grid::weights(w, 0));
            crate::fast_ops::conv3x3_relu(&conv, x)
        } else {
            self.conv_relu(x)
        };
        let x = self.downsample(self.normalize(x));
        let x = pass.output(index, x);
        crate::fast_ops::dropout(&self.dropout, x)
    }

    /// The block's convolution and ReLU: [`crate::fast_ops::conv3x3_relu`] (burn's layers, or on
    /// flex the same values with a faster backward).
    pub fn conv_relu(&self, x: Tensor<4>) -> Tensor<4> {
        crate::fast_ops::conv3x3_relu(&self.conv, x)
    }

    /// The block's max pool: [`crate::fast_ops::max_pool2x2`] (burn's layer, or on flex the same
    /// values and gradient routing from a direct loop).
    pub fn downsample(&self, x: Tensor<4>) -> Tensor<4> {
        crate::fast_ops::max_pool2x2(&self.pool, x)
    }

    /// The block's BatchNorm: in training, [`crate::fast_ops::batch_norm_train`] (the same values
    /// and gradients as burn's, without its transposes); otherwise burn's own.
    pub fn normalize(&self, x: Tensor<4>) -> Tensor<4> {
        if crate::fast_ops::enabled() && x.device().is_autodiff() && self.norm.training.is_enabled()
        {
            crate::fast_ops::batch_norm_train(&self.norm, x)
        } else {
            self.norm.forward(x)
        }
    }
}

/// The whole network.
#[derive(Module, Debug)]
pub struct Net {
    pub blocks: Vec<Block>,
    pub head_dropout1: Dropout,
    pub head_dropout2: Dropout,
    pub fc1: Linear,
    pub fc2: Linear,
    pub out: Linear,
    pub relu: Relu,
}

/// What one walk through the network does at its quantized layers (each block's output after
/// the pool, the two hidden dense layers after ReLU, the logits): [`Net::forward`],
/// [`Net::forward_trace`] and [`Net::forward_quant_sim`] are this one walk.
pub enum Pass<'a> {
    /// The float network, as trained and exported.
    Float,
    /// Float, keeping each quantized layer's output (flattened to `[N, values]`) for calibration.
    Trace(Vec<Tensor<2>>),
    /// The int8 model simulated: weights rounded per output channel, each quantized layer's
    /// output rounded to its grid (one per layer, in walk order).
    QuantSim(&'a [QParams]),
}

impl Pass<'_> {
    fn rounds_weights(&self) -> bool {
        matches!(self, Pass::QuantSim(_))
    }

    /// The output of quantized layer `layer` as the walk continues with it.
    fn output<const D: usize>(&mut self, layer: usize, x: Tensor<D>) -> Tensor<D> {
        match self {
            Pass::Float => x,
            Pass::Trace(outputs) => {
                let dims = x.dims();
                let values = dims[1..].iter().product::<usize>();
                outputs.push(x.clone().reshape([dims[0], values]));
                x
            }
            Pass::QuantSim(grids) => int8_grid::activations(x, grids[layer]),
        }
    }

    /// A dense layer, its weights as the pass gives them.
    fn dense(&self, layer: &Linear, x: Tensor<2>) -> Tensor<2> {
        if self.rounds_weights() {
            let mut layer = layer.clone();
            layer.weight = layer.weight.map(|w| int8_grid::weights(w, 1));
            layer.forward(x)
        } else {
            layer.forward(x)
        }
    }
}

/// Spatial side after the five 2x2 pools: 48 → 24 → 12 → 6 → 3 → 1.
pub const fn final_side() -> usize {
    let mut s = SIDE;
    let mut i = 0;
    while i < FILTERS.len() {
        s /= 2;
        i += 1;
    }
    s
}

impl Net {
    pub fn new(device: &Device, dropout: DropoutRates) -> Self {
        let mut blocks = Vec::new();
        let mut cin = 1;
        for &cout in &FILTERS {
            blocks.push(Block::new(cin, cout, dropout.block, device));
            cin = cout;
        }
        let flat = cin * final_side() * final_side();
        Net {
            blocks,
            head_dropout1: DropoutConfig::new(dropout.head).init(),
            head_dropout2: DropoutConfig::new(dropout.head).init(),
            fc1: LinearConfig::new(flat, HIDDEN).init(device),
            fc2: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            out: LinearConfig::new(HIDDEN, CLASS_COUNT).init(device),
            relu: Relu::new(),
        }
    }

    /// The same network with other Dropout rates (Dropout has no weights: a recipe may change
    /// the rates between epochs).
    pub fn with_dropout(mut self, rates: DropoutRates) -> Self {
        for block in &mut self.blocks {
            block.dropout.prob = rates.block;
        }
        self.head_dropout1.prob = rates.head;
        self.head_dropout2.prob = rates.head;
        self
    }

    /// Trainable parameters, as Keras counts them: every float parameter except BatchNorm's
    /// running mean and variance (statistics, not learned by gradient).
    pub fn trainable_params(&self) -> usize {
        let running: usize = self
            .blocks
            .iter()
            .map(|b| {
                b.norm.running_mean.value().shape().num_elements()
                    + b.norm.running_var.value().shape().num_elements()
            })
            .sum();
        self.num_params() - running
    }

    /// The output of every quantized layer, for calibration: each block's output (after the pool)
    /// as `[N, C, H, W]` flattened to `[N, C·H·W]`, then fc1 and fc2 after ReLU, then the logits.
    pub fn forward_trace(&self, images: Tensor<4>) -> Vec<Tensor<2>> {
        let mut pass = Pass::Trace(Vec::new());
        self.walk(images, &mut pass);
        match pass {
            Pass::Trace(outputs) => outputs,
            _ => unreachable!("the pass stays a trace"),
        }
    }

    /// [`Net::forward`] with every weight and every quantized layer's output rounded as the int8
    /// model rounds them (see [`crate::fake_quant`]); `outputs` holds the grids of the layers
    /// [`Net::forward_trace`] lists, in its order.
    ///
    /// # Panics
    /// `outputs` not holding one grid per quantized layer (a caller's bug).
    pub fn forward_quant_sim(&self, images: Tensor<4>, outputs: &[QParams]) -> Tensor<2> {
        assert_eq!(
            outputs.len(),
            self.blocks.len() + 3,
            "one grid per quantized layer"
        );
        self.walk(images, &mut Pass::QuantSim(outputs))
    }

    /// `[N, 1, 48, 48]` images (pixel/255) → `[N, 7]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.walk(images, &mut Pass::Float)
    }

    /// The network's one walk, in the paper's order: the five blocks, Flatten, two Dropouts,
    /// Dense 512 + ReLU twice, Dense 7; `pass` decides what happens at the quantized layers.
    pub fn walk(&self, images: Tensor<4>, pass: &mut Pass) -> Tensor<2> {
        let mut x = images;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_pass(x, pass, i);
        }
        let x = x.flatten::<2>(1, 3);
        let x = self.head_dropout2.forward(self.head_dropout1.forward(x));
        let b = self.blocks.len();
        let x = self.relu.forward(pass.dense(&self.fc1, x));
        let x = pass.output(b, x);
        let x = self.relu.forward(pass.dense(&self.fc2, x));
        let x = pass.output(b + 1, x);
        let x = pass.dense(&self.out, x);
        pass.output(b + 2, x)
    }
}
