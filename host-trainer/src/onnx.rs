//! Export of the float model as ONNX (burn has import only). The graph follows DESIGN.md:
//! input `input` f32 `[N,1,48,48]` = pixel/255, output `scores` f32 `[N,7]` (softmax), metadata
//! `labels` = the class names in output order. Messages are the subset of `onnx.proto` we write,
//! with the field numbers of the ONNX specification, encoded with prost.

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use edge_runtime::labels::{Emotion, CLASS_COUNT};
use prost::Message;

use crate::data::SIDE;
use crate::model::Net;

/// ONNX opset we target (every operator used exists unchanged since opset 13).
pub const OPSET: i64 = 13;
/// IR version matching opset 13 (ONNX 1.8).
pub const IR_VERSION: i64 = 7;

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto.AttributeType` values.
pub mod attr_type {
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const INTS: i32 = 7;
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// `TensorProto.DataType.FLOAT`.
pub const FLOAT: i32 = 1;

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProtoTensor {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INT,
        i: v,
        ..Default::default()
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::FLOAT,
        f: v,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Dimension]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
        }),
    }
}

fn fixed(v: usize) -> Dimension {
    Dimension {
        dim_value: Some(v as i64),
        dim_param: None,
    }
}

fn batch_dim() -> Dimension {
    Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    }
}

/// A graph under construction: nodes and named float initializers.
#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

impl Builder {
    fn node(&mut self, op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: output.into(),
            op_type: op.into(),
            attribute,
        });
    }

    fn init<const D: usize>(&mut self, name: &str, t: Tensor<D>) -> Result<()> {
        let dims: Vec<i64> = t.dims().iter().map(|&d| d as i64).collect();
        let values: Vec<f32> = t
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("parameter {name} is not f32: {e:?}"))?;
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits.push(TensorProto {
            dims,
            data_type: FLOAT,
            name: name.into(),
            raw_data,
        });
        Ok(())
    }

    fn conv(&mut self, x: &str, out: &str, conv: &Conv2d) -> Result<()> {
        let (w, b) = (format!("{out}.weight"), format!("{out}.bias"));
        self.init(&w, conv.weight.val())?;
        let bias = conv.bias.as_ref().context("conv without bias")?;
        self.init(&b, bias.val())?;
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
        Ok(())
    }

    fn batch_norm(&mut self, x: &str, out: &str, bn: &BatchNorm) -> Result<()> {
        let names = ["scale", "bias", "mean", "var"].map(|s| format!("{out}.{s}"));
        self.init(&names[0], bn.gamma.val())?;
        self.init(&names[1], bn.beta.val())?;
        self.init(&names[2], bn.running_mean.value())?;
        self.init(&names[3], bn.running_var.value())?;
        let inputs = [x, &names[0], &names[1], &names[2], &names[3]];
        self.node(
            "BatchNormalization",
            &inputs,
            out,
            vec![float("epsilon", bn.epsilon as f32)],
        );
        Ok(())
    }

    /// burn's Linear stores its weight as `[d_in, d_out]`, which is Gemm's B without transpose.
    fn dense(&mut self, x: &str, out: &str, fc: &Linear) -> Result<()> {
        let (w, b) = (format!("{out}.weight"), format!("{out}.bias"));
        self.init(&w, fc.weight.val())?;
        self.init(&b, fc.bias.as_ref().context("dense without bias")?.val())?;
        self.node("Gemm", &[x, &w, &b], out, vec![int("transB", 0)]);
        Ok(())
    }
}

/// Builds the ONNX model of `net` (inference behaviour: BatchNorm running statistics, no Dropout).
///
/// # Errors
/// A parameter that cannot be read back as f32.
pub fn build(net: &Net, doc: &str) -> Result<ModelProto> {
    let net = net.valid();
    let mut g = Builder::default();
    let mut x = "input".to_string();
    for (i, block) in net.blocks.iter().enumerate() {
        let n = i + 1;
        let conv = format!("block{n}.conv");
        g.conv(&x, &conv, &block.conv)?;
        let relu = format!("block{n}.relu");
        g.node("Relu", &[&conv], &relu, vec![]);
        let bn = format!("block{n}.norm");
        g.batch_norm(&relu, &bn, &block.norm)?;
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
    g.dense("flatten", "fc1", &net.fc1)?;
    g.node("Relu", &["fc1"], "fc1.relu", vec![]);
    g.dense("fc1.relu", "fc2", &net.fc2)?;
    g.node("Relu", &["fc2"], "fc2.relu", vec![]);
    g.dense("fc2.relu", "logits", &net.out)?;
    g.node("Softmax", &["logits"], "scores", vec![int("axis", 1)]);

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
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "host-trainer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(graph),
        metadata_props: vec![StringStringEntryProto {
            key: "labels".into(),
            value: Emotion::ALL.map(|e| e.name()).join(","),
        }],
    })
}

/// The serialized ONNX file of `net`.
pub fn to_bytes(net: &Net, doc: &str) -> Result<Vec<u8>> {
    Ok(build(net, doc)?.encode_to_vec())
}

/// `TensorProto.DataType` INT8 and INT32.
pub const INT8: i32 = 3;
pub const INT32: i32 = 6;

impl Builder {
    fn raw(&mut self, name: &str, dims: &[usize], data_type: i32, raw_data: Vec<u8>) {
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.into(),
            raw_data,
        });
    }

    fn floats(&mut self, name: &str, dims: &[usize], v: &[f32]) {
        self.raw(
            name,
            dims,
            FLOAT,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
    }

    /// `QuantizeLinear(x)` to int8 with per-tensor scale and zero point.
    fn quantize(&mut self, x: &str, out: &str, q: edge_runtime::format::QParams) {
        let (s, z) = (format!("{out}.scale"), format!("{out}.zero"));
        self.floats(&s, &[], &[q.scale]);
        self.raw(&z, &[], INT8, vec![q.zero as u8]);
        self.node("QuantizeLinear", &[x, &s, &z], out, vec![]);
    }

    /// `DequantizeLinear(x)` with per-tensor parameters.
    fn dequantize(&mut self, x: &str, out: &str, q: edge_runtime::format::QParams) {
        let (s, z) = (format!("{out}.scale"), format!("{out}.zero"));
        self.floats(&s, &[], &[q.scale]);
        self.raw(&z, &[], INT8, vec![q.zero as u8]);
        self.node("DequantizeLinear", &[x, &s, &z], out, vec![]);
    }

    /// An int8 (or int32) initializer dequantized per channel along `axis`.
    fn dq_param(
        &mut self,
        name: &str,
        dims: &[usize],
        int32: Option<&[i32]>,
        int8: Option<&[i8]>,
        scales: &[f32],
        axis: i64,
    ) {
        let q = format!("{name}.q");
        let (raw, ty, zero_ty, zero_bytes): (Vec<u8>, i32, i32, usize) = match (int32, int8) {
            (Some(v), _) => (
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                INT32,
                INT32,
                4,
            ),
            (None, Some(v)) => (v.iter().map(|&x| x as u8).collect(), INT8, INT8, 1),
            (None, None) => (Vec::new(), INT8, INT8, 1),
        };
        self.raw(&q, dims, ty, raw);
        let (s, z) = (format!("{name}.scale"), format!("{name}.zero"));
        self.floats(&s, &[scales.len()], scales);
        self.raw(
            &z,
            &[scales.len()],
            zero_ty,
            vec![0u8; zero_bytes * scales.len()],
        );
        self.node(
            "DequantizeLinear",
            &[&q, &s, &z],
            name,
            vec![int("axis", axis)],
        );
    }
}

/// The QDQ ONNX of the int8 model: the float graph with every activation passed through
/// `QuantizeLinear`/`DequantizeLinear` at its int8 parameters and every weight and bias stored as
/// int8/int32 with per-channel `DequantizeLinear`. A float runtime running it simulates the int8
/// model; the int8 output of every layer (`block1.q` … `logits.q`) is a graph output, so the
/// runtime can be compared layer by layer.
///
/// # Errors
/// A parameter that cannot be read.
pub fn build_qdq(net: &Net, layers: &[crate::quantize::QuantLayer]) -> Result<ModelProto> {
    let net = net.valid();
    let mut g = Builder::default();
    let mut outputs = Vec::new();
    let first = layers.first().context("no layers")?;
    g.quantize("input", "input.q", first.desc.input);
    g.dequantize("input.q", "input.dq", first.desc.input);
    let mut x = "input.dq".to_string();
    let blocks = net.blocks.len();
    for (i, (block, ql)) in net.blocks.iter().zip(layers).enumerate() {
        let n = i + 1;
        let (cin, cout) = (usize::from(ql.desc.in_c), usize::from(ql.desc.out_c));
        // Ours [out][ky][kx][in] → ONNX [out][in][ky][kx].
        let mut w = vec![0i8; ql.weights.len()];
        for o in 0..cout {
            for c in 0..cin {
                for k in 0..9 {
                    w[(o * cin + c) * 9 + k] = ql.weights[(o * 9 + k) * cin + c];
                }
            }
        }
        let wn = format!("block{n}.w");
        g.dq_param(
            &wn,
            &[cout, cin, 3, 3],
            None,
            Some(&w),
            &ql.weight_scales,
            0,
        );
        let bias_scales: Vec<f32> = ql
            .weight_scales
            .iter()
            .map(|s| s * ql.desc.input.scale)
            .collect();
        let bn = format!("block{n}.b");
        g.dq_param(&bn, &[cout], Some(&ql.bias), None, &bias_scales, 0);
        let conv = format!("block{n}.conv");
        g.node(
            "Conv",
            &[&x, &wn, &bn],
            &conv,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("pads", &[1, 1, 1, 1]),
                ints("strides", &[1, 1]),
            ],
        );
        let relu = format!("block{n}.relu");
        g.node("Relu", &[&conv], &relu, vec![]);
        let norm = format!("block{n}.norm");
        g.batch_norm(&relu, &norm, &block.norm)?;
        let pool = format!("block{n}.pool");
        g.node(
            "MaxPool",
            &[&norm],
            &pool,
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        );
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
    for (j, (ql, name)) in layers[blocks..]
        .iter()
        .zip(["fc1", "fc2", "logits"])
        .enumerate()
    {
        let (d_in, d_out) = (usize::from(ql.desc.in_c), usize::from(ql.desc.out_c));
        if j == 0 && layers[blocks - 1].desc.out_shape().0 != 1 {
            bail!("QDQ export assumes the last block's output is 1x1 (flatten order)");
        }
        // Ours [out][in] → Gemm B [in][out].
        let mut w = vec![0i8; ql.weights.len()];
        for o in 0..d_out {
            for k in 0..d_in {
                w[k * d_out + o] = ql.weights[o * d_in + k];
            }
        }
        let wn = format!("{name}.w");
        g.dq_param(&wn, &[d_in, d_out], None, Some(&w), &ql.weight_scales, 1);
        let bias_scales: Vec<f32> = ql
            .weight_scales
            .iter()
            .map(|s| s * ql.desc.input.scale)
            .collect();
        let bn = format!("{name}.b");
        g.dq_param(&bn, &[d_out], Some(&ql.bias), None, &bias_scales, 0);
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
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "host-trainer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string:
            "QDQ simulation of the int8 FER-2013 model; outputs are each layer's int8 activations"
                .into(),
        graph: Some(graph),
        metadata_props: vec![StringStringEntryProto {
            key: "labels".into(),
            value: Emotion::ALL.map(|e| e.name()).join(","),
        }],
    })
}
