//! The QDQ ONNX of the int8 model: the float graph with every activation passed through
//! `QuantizeLinear`/`DequantizeLinear` at its int8 parameters and every weight and bias stored as
//! int8/int32 with per-channel `DequantizeLinear`. A float runtime running it simulates the int8
//! model; the int8 output of every layer (`block1.q` … `logits.q`) is a graph output, so the
//! runtime can be compared layer by layer.

use anyhow::{bail, Context, Result};

use super::proto::{
    batch_dim, fixed, int, model, value_info, Builder, Dimension, GraphProto, ModelProto,
    TypeProto, INT8,
};
use crate::network::{layout, NetworkParams};
use crate::quantizer::QuantLayer;
use fer_dataset::data::SIDE;

/// The per-channel scales of a layer's int32 bias: `s_in · s_w[c]`.
fn bias_scales(ql: &QuantLayer) -> Vec<f32> {
    ql.weight_scales
        .iter()
        .map(|s| s * ql.desc.input.scale)
        .collect()
}

/// The QDQ graph of `net` quantized as `layers` (one per conv block, then one per dense layer).
///
/// # Errors
/// Layers that do not match the network.
pub fn build(net: &NetworkParams, layers: &[QuantLayer]) -> Result<ModelProto> {
    if layers.len() != net.blocks.len() + net.dense.len() {
        bail!(
            "{} quantized layers for a network of {}",
            layers.len(),
            net.blocks.len() + net.dense.len()
        );
    }
    let mut g = Builder::default();
    let mut outputs: Vec<(String, Vec<Dimension>)> = Vec::new();
    let first = layers.first().context("no layers")?;
    g.quantize("input", "input.q", first.desc.input);
    g.dequantize("input.q", "input.dq", first.desc.input);
    let mut x = "input.dq".to_string();
    let (conv_layers, dense_layers) = layers.split_at(net.blocks.len());
    for (i, (block, ql)) in net.blocks.iter().zip(conv_layers).enumerate() {
        let n = i + 1;
        let (cin, cout) = (usize::from(ql.desc.in_c), usize::from(ql.desc.out_c));
        let wn = format!("block{n}.w");
        let w = layout::conv_to_oihw(&ql.weights, cout, cin);
        g.dq_param(
            &wn,
            &[cout, cin, 3, 3],
            None,
            Some(&w),
            &ql.weight_scales,
            0,
        );
        let bn = format!("block{n}.b");
        g.dq_param(&bn, &[cout], Some(&ql.bias), None, &bias_scales(ql), 0);
        let pool = g.block(n, [&x, &wn, &bn], &block.norm);
        let q = format!("block{n}.q");
        g.quantize(&pool, &q, ql.desc.output);
        outputs.push((
            q.clone(),
            vec![
                batch_dim(),
                fixed(cout),
                fixed(usize::from(ql.desc.in_h) / 2),
                fixed(usize::from(ql.desc.in_w) / 2),
            ],
        ));
        let dq = format!("block{n}.dq");
        g.dequantize(&q, &dq, ql.desc.output);
        x = dq;
    }
    g.node("Flatten", &[&x], "flatten", vec![int("axis", 1)]);
    x = "flatten".into();
    for (j, (ql, name)) in dense_layers
        .iter()
        .zip(["fc1", "fc2", "logits"])
        .enumerate()
    {
        let (d_in, d_out) = (usize::from(ql.desc.in_c), usize::from(ql.desc.out_c));
        let chw = if j == 0 { net.flattened() } else { None };
        let w = layout::dense_to_gemm(&ql.weights, d_in, d_out, chw);
        let wn = format!("{name}.w");
        g.dq_param(&wn, &[d_in, d_out], None, Some(&w), &ql.weight_scales, 1);
        let bn = format!("{name}.b");
        g.dq_param(&bn, &[d_out], Some(&ql.bias), None, &bias_scales(ql), 0);
        let gemm = format!("{name}.gemm");
        g.node("Gemm", &[&x, &wn, &bn], &gemm, vec![int("transB", 0)]);
        let pre_q = if ql.desc.relu {
            let r = format!("{name}.relu");
            g.node("Relu", &[&gemm], &r, vec![]);
            r
        } else {
            gemm
        };
        let q = format!("{name}.q");
        g.quantize(&pre_q, &q, ql.desc.output);
        outputs.push((q.clone(), vec![batch_dim(), fixed(d_out)]));
        let dq = format!("{name}.dq");
        g.dequantize(&q, &dq, ql.desc.output);
        x = dq;
    }
    let output = outputs
        .iter()
        .map(|(name, dims)| {
            let mut v = value_info(name, dims);
            if let Some(TypeProto {
                tensor_type: Some(t),
            }) = v.r#type.as_mut()
            {
                t.elem_type = INT8;
            }
            v
        })
        .collect();
    let graph = GraphProto {
        node: g.nodes,
        name: "fer2013_cnn_qdq".into(),
        initializer: g.inits,
        input: vec![value_info(
            "input",
            &[batch_dim(), fixed(1), fixed(SIDE), fixed(SIDE)],
        )],
        output,
    };
    Ok(model(
        graph,
        "QDQ simulation of the int8 FER-2013 model; outputs are each layer's int8 activations",
    ))
}
