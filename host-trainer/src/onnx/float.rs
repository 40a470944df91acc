//! The float ONNX of the trained network: input `input` f32 `[N,1,48,48]` = pixel/255, output
//! `scores` f32 `[N,7]` (softmax), metadata `labels` = the class names in output order and
//! `input_rule` = the light rule every face gets first (see `proto::model`).

use edge_runtime::labels::CLASS_COUNT;
use prost::Message;

use super::proto::{
    batch_dim, fixed, float, int, ints, model, value_info, Builder, GraphProto, ModelProto,
};
use crate::network::{layout, ConvBlock, Dense, NetworkParams, Norm};
use fer_dataset::data::SIDE;

impl Builder {
    /// The float initializers of a block's conv: weights (ONNX's `[out][in][ky][kx]`) and bias,
    /// named `<conv>.weight` and `<conv>.bias`.
    fn conv_params(&mut self, conv: &str, block: &ConvBlock) -> (String, String) {
        let (w, b) = (format!("{conv}.weight"), format!("{conv}.bias"));
        let oihw = layout::conv_to_oihw(&block.weights, block.out_c, block.in_c);
        self.floats(&w, &[block.out_c, block.in_c, 3, 3], &oihw);
        self.floats(&b, &[block.out_c], &block.bias);
        (w, b)
    }

    /// Block `n`'s nodes: Conv 3x3 'same' on `x` with weights `w` and bias `b`, ReLU,
    /// BatchNorm (`norm`), MaxPool 2x2. Returns the pool's output name.
    pub(super) fn block(&mut self, n: usize, [x, w, b]: [&str; 3], norm: &Norm) -> String {
        let conv = format!("block{n}.conv");
        self.node(
            "Conv",
            &[x, w, b],
            &conv,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("pads", &[1, 1, 1, 1]),
                ints("strides", &[1, 1]),
            ],
        );
        let relu = format!("block{n}.relu");
        self.node("Relu", &[&conv], &relu, vec![]);
        let bn = format!("block{n}.norm");
        self.batch_norm(&relu, &bn, norm);
        let pool = format!("block{n}.pool");
        self.node(
            "MaxPool",
            &[&bn],
            &pool,
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        );
        pool
    }

    /// BatchNorm with its running statistics (inference).
    fn batch_norm(&mut self, x: &str, out: &str, norm: &Norm) {
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
pub fn build(net: &NetworkParams, doc: &str) -> ModelProto {
    let mut g = Builder::default();
    let mut x = "input".to_string();
    for (i, block) in net.blocks.iter().enumerate() {
        let n = i + 1;
        let (w, b) = g.conv_params(&format!("block{n}.conv"), block);
        x = g.block(n, [&x, &w, &b], &block.norm);
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
pub fn to_bytes(net: &NetworkParams, doc: &str) -> Vec<u8> {
    build(net, doc).encode_to_vec()
}
