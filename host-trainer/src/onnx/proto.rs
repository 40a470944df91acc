//! The subset of `onnx.proto` that host-trainer writes (and reads: the face detector's graph,
//! `crate::detector::graph`), with the field numbers of the ONNX specification, encoded with
//! prost; and a graph builder shared by the float and QDQ exports.

use prost::Message;

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
    /// A string attribute (read only; never written, so exports are unchanged).
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
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
    /// Float values stored as a list instead of `raw_data` (read only).
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// 1 when the values are in another file (read only: such models are refused).
    #[prost(int32, tag = "14")]
    pub data_location: i32,
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

/// An `INTS` attribute.
pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// An `INT` attribute.
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INT,
        i: v,
        ..Default::default()
    }
}

/// A `FLOAT` attribute.
pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::FLOAT,
        f: v,
        ..Default::default()
    }
}

/// A float tensor's name, type and shape.
pub fn value_info(name: &str, dims: &[Dimension]) -> ValueInfoProto {
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

/// A fixed dimension.
pub fn fixed(v: usize) -> Dimension {
    Dimension {
        dim_value: Some(v as i64),
        dim_param: None,
    }
}

/// The batch dimension `N`.
pub fn batch_dim() -> Dimension {
    Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    }
}

/// `TensorProto.DataType` INT8 and INT32.
pub const INT8: i32 = 3;
pub const INT32: i32 = 6;

/// A graph under construction: nodes and named float initializers.
#[derive(Default)]
pub struct Builder {
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
}

impl Builder {
    /// Adds a node with one output, named after it.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: output.into(),
            op_type: op.into(),
            attribute,
        });
    }
    /// Adds an initializer of raw little-endian bytes.
    pub fn raw(&mut self, name: &str, dims: &[usize], data_type: i32, raw_data: Vec<u8>) {
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.into(),
            raw_data,
            ..Default::default()
        });
    }

    /// Adds a float initializer.
    pub fn floats(&mut self, name: &str, dims: &[usize], v: &[f32]) {
        self.raw(
            name,
            dims,
            FLOAT,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
    }

    /// `QuantizeLinear(x)` to int8 with per-tensor scale and zero point.
    pub fn quantize(&mut self, x: &str, out: &str, q: edge_runtime::format::QParams) {
        let (s, z) = (format!("{out}.scale"), format!("{out}.zero"));
        self.floats(&s, &[], &[q.scale]);
        self.raw(&z, &[], INT8, vec![q.zero as u8]);
        self.node("QuantizeLinear", &[x, &s, &z], out, vec![]);
    }

    /// `DequantizeLinear(x)` with per-tensor parameters.
    pub fn dequantize(&mut self, x: &str, out: &str, q: edge_runtime::format::QParams) {
        let (s, z) = (format!("{out}.scale"), format!("{out}.zero"));
        self.floats(&s, &[], &[q.scale]);
        self.raw(&z, &[], INT8, vec![q.zero as u8]);
        self.node("DequantizeLinear", &[x, &s, &z], out, vec![]);
    }

    /// An int8 (or int32) initializer dequantized per channel along `axis`.
    pub fn dq_param(
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

/// The model around `graph`: IR version, opset, producer, `doc`, and the metadata: `labels`,
/// and `input_rule`, the light normalization every face must get before the network sees it
/// (edge-runtime's `normalize::INPUT_RULE`; the input is that 48x48 face scaled by 1/255).
pub fn model(graph: GraphProto, doc: &str) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "host-trainer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(graph),
        metadata_props: vec![
            StringStringEntryProto {
                key: "labels".into(),
                value: edge_runtime::labels::Emotion::ALL
                    .map(|e| e.name())
                    .join(","),
            },
            StringStringEntryProto {
                key: "input_rule".into(),
                value: edge_runtime::normalize::INPUT_RULE.name().into(),
            },
        ],
    }
}
