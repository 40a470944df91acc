//! Export of the float model as ONNX (burn has import only). The graph follows DESIGN.md:
//! input `input` f32 `[N,1,48,48]` = pixel/255, output `scores` f32 `[N,7]` (softmax), metadata
//! `labels` = the class names in output order. Messages are the subset of `onnx.proto` we write,
//! with the field numbers of the ONNX specification, encoded with prost.

use anyhow::{Context, Result};
use burn::module::Module;
use burn::nn::{BatchNorm, Linear};
use burn::nn::conv::Conv2d;
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
        self.node("BatchNormalization", &inputs, out, vec![float("epsilon", bn.epsilon as f32)]);
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
        input: vec![value_info("input", &[batch_dim(), fixed(1), fixed(SIDE), fixed(SIDE)])],
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
