//! The float ONNX of the trained network: input `input` f32 `[N,1,48,48]` = pixel/255, output
//! `scores` f32 `[N,7]` (softmax), metadata `labels` = the class names in output order.

use edge_runtime::labels::CLASS_COUNT;
use prost::Message;

use super::proto::{
    batch_dim, fixed, float, int, ints, model, value_info, Builder, GraphProto, ModelProto,
};
use crate::data::SIDE;
use crate::network::{layout, ConvBlock, Dense, Network, Norm};

impl Builder {
    /// A 3x3 'same' convolution with its weights (ONNX's `[out][in][ky][kx]`) and bias.
    fn conv(&mut self, x: &str, out: &str, block: &ConvBlock) {
        let (w, b) = (format!("{out}.weight"), format!("{out}.bias"));
        let oihw = layout::conv_to_oihw(&block.weights, block.out_c, block.in_c);
        self.floats(&w, &[block.out_c, block.in_c, 3, 3], &oihw);
        self.floats(&b, &[block.out_c], &block.bias);
        self.node(
            "Conv",
            &[x, &w, &b],
            out,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("pads", &[1, 1, 1, 1]),
                ints("strides", &[1, 1]),
            ],
        );
    }

    /// BatchNorm with its running statistics (inference).
    pub(super) fn batch_norm(&mut self, x: &str, out: &str, norm: &Norm) {
        let names = ["scale", "bias", "mean", "var"].map(|s| format!("{out}.{s}"));
        let c = norm.gamma.len();
        for (name, v) in names
            .iter()
            .zip([&norm.gamma, &norm.beta, &norm.mean, &norm.var])
        {
            self.floats(name, &[c], v);
        }
        let inputs = [x, &names[0], &names[1], &names[2], &names[3]];
        self.node(
            "BatchNormalization",
            &inputs,
            out,
            vec![float("epsilon", norm.epsilon as f32)],
        );
    }

    /// Gemm with B `[in][out]` (no transpose); `chw`: see [`layout::dense_to_gemm`].
    fn dense(&mut self, x: &str, out: &str, fc: &Dense, chw: Option<(usize, usize)>) {
        let (w, b) = (format!("{out}.weight"), format!("{out}.bias"));
        let gemm = layout::dense_to_gemm(&fc.weights, fc.d_in, fc.d_out, chw);
        self.floats(&w, &[fc.d_in, fc.d_out], &gemm);
        self.floats(&b, &[fc.d_out], &fc.bias);
        self.node("Gemm", &[x, &w, &b], out, vec![int("transB", 0)]);
    }
}

/// The ONNX graph of `net` (inference: BatchNorm running statistics, no Dropout), with `doc` as
/// its description.
pub fn build(net: &Network, doc: &str) -> ModelProto {
    let mut g = Builder::default();
    let mut x = "input".to_string();
    for (i, block) in net.blocks.iter().enumerate() {
        let n = i + 1;
        let conv = format!("block{n}.conv");
        g.conv(&x, &conv, block);
        let relu = format!("block{n}.relu");
        g.node("Relu", &[&conv], &relu, vec![]);
        let bn = format!("block{n}.norm");
        g.batch_norm(&relu, &bn, &block.norm);
        let pool = format!("block{n}.pool");
        g.node(
            "MaxPool",
            &[&bn],
            &pool,
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        );
        x = pool;
    }
    g.node("Flatten", &[&x], "flatten", vec![int("axis", 1)]);
    x = "flatten".into();
    let names = ["fc1", "fc2", "logits"];
    for (j, (fc, name)) in net.dense.iter().zip(names).enumerate() {
        let chw = if j == 0 { net.flattened() } else { None };
        g.dense(&x, name, fc, chw);
        x = name.to_string();
        if fc.relu {
            let relu = format!("{name}.relu");
            g.node("Relu", &[name], &relu, vec![]);
            x = relu;
        }
    }
    g.node("Softmax", &[&x], "scores", vec![int("axis", 1)]);

    let graph = GraphProto {
        node: g.nodes,
        name: "fer2013_cnn".into(),
        initializer: g.inits,
        input: vec![value_info(
            "input",
            &[batch_dim(), fixed(1), fixed(SIDE), fixed(SIDE)],
        )],
        output: vec![value_info("scores", &[batch_dim(), fixed(CLASS_COUNT)])],
    };
    model(graph, doc)
}

/// The serialized float ONNX file of `net`.
pub fn to_bytes(net: &Network, doc: &str) -> Vec<u8> {
    build(net, doc).encode_to_vec()
}
